from pixelfleet.cli import main

main()

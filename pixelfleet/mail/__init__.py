"""Mail to account holders: the messages (`letters`), the outbox that keeps them until they are
sent (`outbox`), and the mail port with its adapters (`senders`: SMTP, or .eml files)."""

"""Rate limits: a pure policy (GCRA), two stores (this process's memory, or Redis shared by every
replica) and a limiter that names each rule once."""

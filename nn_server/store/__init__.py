"""What every process of a server agrees on: the kept versions of each network, the served
pointer (and its rollback), the training status and the training lease."""

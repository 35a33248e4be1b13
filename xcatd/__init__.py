"""xcatd: the daemon that provisions diskless service nodes the way xCAT does."""

__version__ = "0.1.0"

"""The thin client behind every xCAT command: standard-library ssl and socket
plus msgpack, so that a command starts in milliseconds.  It never imports trio."""

"""packimage's room: a root image packed into the one file diskless nodes
download (cpio, tar or squashfs; gzip, xz or zstd), its exlists and
synclists applied, all or nothing.  See packimage.py."""

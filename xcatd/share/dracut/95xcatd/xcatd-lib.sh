#!/bin/sh
# The stateless root of an xcatd node, for dracut's init.  Kernel command line:
#   imgurl=http://<server>:<port>/<rootimgdir>/rootimg.<cpio.gz|cpio.xz|cpio.zst|sfs>
#   NODE=<node> XCATSTATUS=http://<master>:<port>/xcatd/status [rootlimit=<size>]
# The image's checksum is <imgurl>.sha256 (sha256sum's format, from packimage).
# Names start with xcatd_: this file is sourced into dracut's init.
command -v getarg > /dev/null || . /lib/dracut-lib.sh

XCATD_ATTEMPTS=6 # downloads of the image before the boot gives up
XCATD_WORK=/run/xcatd # the download, and for a squashfs its mounts (kept by switch_root)

# Best effort: the node's state (and why, for failed) to the daemon, form-encoded.
xcatd_report() {
    xcatd_url=$(getarg XCATSTATUS=)
    [ -n "$xcatd_url" ] || return 0
    xcatd_state=$1
    shift
    [ $# -gt 0 ] && set -- --data-urlencode "detail=$1"
    curl -fsS --max-time 10 -o /dev/null --data-urlencode "node=$(getarg NODE=)" \
        --data-urlencode "state=$xcatd_state" "$@" "$xcatd_url" \
        || warn "xcatd: could not report $xcatd_state to $xcatd_url"
}

# Tell the daemon why, then refuse to boot: dracut's die says why on the
# console and drops to the emergency shell (rd.shell=0: halts).  die writes
# its message into a shell script it then runs, so quotes, $ and backquotes
# (from imgurl= or curl's words) are taken out of what it gets.
xcatd_fail() {
    xcatd_report failed "$1"
    # shellcheck disable=SC1003  # the backslash is one of the characters taken out
    die "xcatd: $(printf '%s' "$1" | tr -d '"$`\\')"
}

# curl $1 to file $2 (curl itself retries what it deems transient); false,
# with curl's message in xcatd_why, when it fails.
xcatd_get() {
    # A transfer slower than 1 KiB/s for a minute has stalled: give up on it.
    curl -fsS --connect-timeout 10 --speed-limit 1024 --speed-time 60 \
        --retry 3 --retry-connrefused --retry-delay 2 \
        -o "$2" "$1" 2> /tmp/xcatd.curl-error && return 0
    xcatd_why=$(cat /tmp/xcatd.curl-error)
    return 1
}

# Download $1 and its .sha256 to file $2 and check it; false, with the
# reason in xcatd_why, if a download fails or the checksum does not match.
xcatd_fetch_checked() {
    rm -f "$2" "$2.sha256"
    xcatd_get "$1.sha256" "$2.sha256" && xcatd_get "$1" "$2" || return 1
    read -r xcatd_expected _ < "$2.sha256"
    xcatd_actual=$(sha256sum "$2")
    [ "${xcatd_actual%% *}" = "$xcatd_expected" ] && return 0
    xcatd_why="it does not match its checksum $1.sha256"
    return 1
}

# The image into $2, retrying with a growing pause: the server may still be
# starting, or packimage writing a new image.
xcatd_download() {
    xcatd_attempt=1
    xcatd_pause=5
    until xcatd_fetch_checked "$1" "$2"; do
        [ "$xcatd_attempt" -ge "$XCATD_ATTEMPTS" ] && return 1
        warn "xcatd: download $xcatd_attempt of $XCATD_ATTEMPTS: $xcatd_why; next in $xcatd_pause s"
        sleep "$xcatd_pause"
        xcatd_attempt=$((xcatd_attempt + 1))
        xcatd_pause=$((xcatd_pause * 2 > 60 ? 60 : xcatd_pause * 2))
    done
}

# A tmpfs at $1, as large as rootlimit= allows (else the kernel's default, half the RAM).
xcatd_tmpfs() {
    xcatd_limit=$(getarg rootlimit=)
    mkdir -p "$1"
    mount -t tmpfs -o "mode=0755${xcatd_limit:+,size=$xcatd_limit}" rootfs "$1"
}

xcatd_unpack() { # archive decompressor
    xcatd_tmpfs "$NEWROOT" || return 1
    (cd "$NEWROOT" && "$2" -dc < "$1" | cpio -idmu --quiet --no-absolute-filenames) || return 1
    rm -f "$1"
}

# The squashfs read-only, under an overlay whose changes live in a tmpfs.
xcatd_overlay() {
    mkdir -p "$XCATD_WORK/image" \
        && mount -t squashfs -o ro,loop "$1" "$XCATD_WORK/image" \
        && xcatd_tmpfs "$XCATD_WORK/rw" \
        && mkdir -p "$XCATD_WORK/rw/upper" "$XCATD_WORK/rw/work" "$NEWROOT" \
        && mount -t overlay -o "lowerdir=$XCATD_WORK/image,upperdir=$XCATD_WORK/rw/upper,workdir=$XCATD_WORK/rw/work" \
            overlay "$NEWROOT"
}

xcatd_root() {
    xcatd_imgurl=$(getarg imgurl=)
    xcatd_report netbooting
    case "$xcatd_imgurl" in
        *.cpio.gz) xcatd_tool=gzip ;;
        *.cpio.xz) xcatd_tool=xz ;;
        *.cpio.zst) xcatd_tool=zstd ;;
        *.sfs) xcatd_tool= ;;
        *) xcatd_fail "imgurl=$xcatd_imgurl is not a .cpio.gz, .cpio.xz, .cpio.zst or .sfs image" ;;
    esac
    if [ -n "$xcatd_tool" ] && ! command -v "$xcatd_tool" > /dev/null; then
        xcatd_fail "this initrd has no $xcatd_tool for $xcatd_imgurl: add it to the image and run genimage"
    fi
    xcatd_file="$XCATD_WORK/${xcatd_imgurl##*/}"
    mkdir -p "$XCATD_WORK"
    info "xcatd: downloading $xcatd_imgurl"
    xcatd_download "$xcatd_imgurl" "$xcatd_file" \
        || xcatd_fail "cannot download $xcatd_imgurl after $XCATD_ATTEMPTS attempts: $xcatd_why"
    if [ -n "$xcatd_tool" ]; then
        info "xcatd: unpacking $xcatd_file into a tmpfs"
        xcatd_unpack "$xcatd_file" "$xcatd_tool" \
            || xcatd_fail "cannot unpack $xcatd_imgurl into a tmpfs (rootlimit=$(getarg rootlimit=))"
    else
        info "xcatd: mounting $xcatd_file under an overlay"
        xcatd_overlay "$xcatd_file" || xcatd_fail "cannot mount $xcatd_imgurl under an overlay"
    fi
    info "xcatd: root image of $(getarg NODE=) ready"
}

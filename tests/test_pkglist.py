"""pkglist and otherpkglist parsing, as XCAT-BEHAVIOUR.md describes it."""

from __future__ import annotations

import pytest

from xcatd.images.build.pkglist import InstallPass, PkglistError, other_package, read
from xcatd.images.listfiles import MAX_DEPTH
from xcatd.images.profiles import shipped_dir


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_one_package_a_line_with_blank_lines_and_comments(tmp_path):
    listed = write(tmp_path / "a.pkglist", "# a comment\n\nbash\n  less  \n# another\nvim\nbash\n")
    result = read(str(listed))
    assert result.passes == [InstallPass(install=["bash", "less", "vim"])]
    assert result.files == [listed]


def test_several_names_on_a_line_are_several_packages(tmp_path):
    listed = write(tmp_path / "a.pkglist", "bash less\tvim\n")
    assert read(str(listed)).install == ["bash", "less", "vim"]


def test_include_is_relative_to_the_including_list(tmp_path):
    write(tmp_path / "lists/common/base.pkglist", "kernel\n#INCLUDE:../more.pkglist#\n")
    write(tmp_path / "lists/more.pkglist", "curl\n")
    top = write(tmp_path / "lists/top.pkglist", "first\n#INCLUDE:common/base.pkglist#\nlast\n")
    result = read(str(top))
    assert result.install == ["first", "kernel", "curl", "last"]
    assert [p.name for p in result.files] == ["top.pkglist", "base.pkglist", "more.pkglist"]


def test_includes_splice_in_place_anywhere_but_in_a_comment(tmp_path):
    write(tmp_path / "one.pkglist", "one\n")
    other = write(tmp_path / "elsewhere/x.pkglist", "zsh\n")
    top = write(tmp_path / "t.pkglist", f"a #INCLUDE:one.pkglist# b #INCLUDE: {other} # c\n")
    write(top.parent / "more.pkglist", "# old: #INCLUDE:gone.pkglist#\nd\n")
    assert read(f"{top},{top.parent}/more.pkglist").install == ["a", "one", "b", "zsh", "c", "d"]


def test_includes_nested_too_deep_are_refused(tmp_path):
    for n in range(MAX_DEPTH + 1):
        write(tmp_path / f"{n}.pkglist", f"#INCLUDE:{n + 1}.pkglist#\n")
    with pytest.raises(PkglistError, match=rf"/{MAX_DEPTH - 1}\.pkglist:1: #INCLUDE# nested more"):
        read(str(tmp_path / "0.pkglist"))


def test_an_include_cycle_is_refused_naming_the_chain(tmp_path):
    a = write(tmp_path / "a.pkglist", "x\n#INCLUDE:b.pkglist#\n")
    b = write(tmp_path / "b.pkglist", "y\n\n#INCLUDE:a.pkglist#\n")
    with pytest.raises(PkglistError) as caught:
        read(str(a))
    assert str(caught.value) == f"{b}:3: #INCLUDE# cycle: {a} -> {b} -> {a}"


def test_including_the_same_file_twice_is_not_a_cycle(tmp_path):
    write(tmp_path / "c.pkglist", "common\n")
    top = write(tmp_path / "t.pkglist", "#INCLUDE:c.pkglist#\n#INCLUDE:c.pkglist#\nx\n")
    assert read(str(top)).install == ["common", "x"]


def test_a_missing_include_names_the_file_and_line(tmp_path):
    top = write(tmp_path / "t.pkglist", "a\n#INCLUDE:gone.pkglist#\n")
    with pytest.raises(PkglistError) as caught:
        read(str(top))
    assert str(caught.value) == f"{top}:2: pkglist {tmp_path}/gone.pkglist does not exist"


def test_a_missing_list_is_named(tmp_path):
    with pytest.raises(PkglistError) as caught:
        read(str(tmp_path / "nothing.pkglist"))
    assert str(caught.value) == f"pkglist {tmp_path}/nothing.pkglist does not exist"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("#INCLUDE:#", "malformed include, write #INCLUDE:<file>#"),
        ("#INCLUDE:x.pkglist", "malformed include, write #INCLUDE:<file>#"),
        ("#ENV:NOEQUALS#", "malformed environment line, write #ENV:VAR=value#"),
        ("#ENV:1BAD=x#", "malformed environment line, write #ENV:VAR=value#"),
        ("#ENV:A=b", "malformed environment line, write #ENV:VAR=value#"),
        ("---rm", "'---rm' is not a package name"),
        ("-", "'-' is not a package name"),
        ("bad;name", "'bad;name' is not a package name"),
        ("$(reboot)", "'$(reboot)' is not a package name"),
        ("-@group", "'-@group' is not a package name"),
        ("dir/", "'dir/' names a directory, not a package"),
        ("../../etc/pkg", "'../../etc/pkg' leaves the package directory"),
        ("@bad;group", "'@bad;group' is not a package group name"),
    ],
)
def test_bad_lines_are_refused_with_file_and_line(tmp_path, line, error):
    listed = write(tmp_path / "bad.pkglist", f"good\n# fine\n{line}\n")
    with pytest.raises(PkglistError) as caught:
        read(str(listed))
    assert str(caught.value) == f"{listed}:3: {error}"


def test_new_install_list_starts_passes_with_their_own_environment(tmp_path):
    listed = write(
        tmp_path / "p.pkglist",
        "#NEW_INSTALL_LIST#\n"  # at the start: no empty first pass
        "#ENV:FIRST=1#\n"
        "a\n"
        "#NEW_INSTALL_LIST#\n"
        "#ENV:SECOND=two words#\n"
        "#ENV:THIRD=#\n"
        "b\n"
        "#NEW_INSTALL_LIST#\n"
        "#NEW_INSTALL_LIST#\n"
        "c\n",
    )
    result = read(str(listed))
    assert result.passes == [
        InstallPass(install=["a"], env={"FIRST": "1"}),
        InstallPass(install=["b"], env={"SECOND": "two words", "THIRD": ""}),
        InstallPass(install=["c"]),
    ]


def test_minus_removes_before_and_double_minus_after(tmp_path):
    listed = write(tmp_path / "r.pkglist", "a\n-old\n--transient\nb\n#NEW_INSTALL_LIST#\n-x\n")
    assert read(str(listed)).passes == [
        InstallPass(install=["a", "b"], remove_before=["old"], remove_after=["transient"]),
        InstallPass(remove_before=["x"]),
    ]


def test_groups_are_kept_whole(tmp_path):
    listed = write(tmp_path / "g.pkglist", "@core\n@Development Tools\nvim\n")
    result = read(str(listed))
    assert result.passes[0].install == ["@core", "@Development Tools", "vim"]
    assert result.passes[0].groups == ["core", "Development Tools"]


def test_comma_separated_files_are_read_in_order_and_passes_continue(tmp_path):
    one = write(tmp_path / "one.pkglist", "a\n#NEW_INSTALL_LIST#\nb\n")
    two = write(tmp_path / "two.pkglist", "c\n")
    result = read(f"{one}, {two}")
    assert [p.install for p in result.passes] == [["a"], ["b", "c"]]
    assert result.files == [one, two]


def test_relative_top_level_names_are_found_from_base(tmp_path):
    write(tmp_path / "x.pkglist", "a\n")
    assert read("x.pkglist", base=tmp_path).install == ["a"]


def test_a_directory_or_binary_file_is_refused(tmp_path):
    with pytest.raises(PkglistError, match="is a directory, not a list file"):
        read(str(tmp_path))
    binary = tmp_path / "b.pkglist"
    binary.write_bytes(b"bash\n\xff\xfe\x00")
    with pytest.raises(PkglistError) as caught:
        read(str(binary))
    assert str(caught.value) == f"{binary}:2: not UTF-8 text"


def test_otherpkglist_entries_name_a_directory_and_a_package(tmp_path):
    listed = write(
        tmp_path / "o.otherpkgs.pkglist",
        "xcat/xcat-core/xCATsn\nxcat/xcat-dep/elvis\nplain\n-xcat/old/gone\n",
    )
    result = read(str(listed))
    assert [other_package(e) for e in result.passes[0].install] == [
        ("xcat/xcat-core", "xCATsn"),
        ("xcat/xcat-dep", "elvis"),
        ("", "plain"),
    ]
    assert [other_package(e) for e in result.passes[0].remove_before] == [("xcat/old", "gone")]


def test_a_copied_list_reads_the_shipped_list_its_include_names_when_not_copied(tmp_path):
    """The seed: copy service.<arch>.pkglist to /install/custom/netboot/<os>/
    and change it; the service.pkglist it includes was not copied."""
    shipped = tmp_path / "opt/xcat/share/xcat/netboot/debian"
    write(shipped / "compute.pkglist", "systemd\n")
    write(shipped / "service.pkglist", "#INCLUDE:compute.pkglist#\ndnsmasq\n")
    custom = tmp_path / "install/custom/netboot/debian"
    copy = write(
        custom / "service.x86_64.pkglist", "#INCLUDE:service.pkglist#\nlinux-image-amd64\nvim\n"
    )
    result = read(str(copy), shipped=shipped)
    assert result.install == ["systemd", "dnsmasq", "linux-image-amd64", "vim"]
    assert result.files == [copy, shipped / "service.pkglist", shipped / "compute.pkglist"]
    assert result.notes == [
        f"{custom}/service.pkglist does not exist: read the shipped {shipped}/service.pkglist "
        f"in its place (copy it to {custom} to change it)"
    ]
    # Copied beside it, the administrator's own copy is read, and nothing is said.
    write(custom / "service.pkglist", "#INCLUDE:compute.pkglist#\nnfs-kernel-server\n")
    again = read(str(copy), shipped=shipped)
    assert again.install == ["systemd", "nfs-kernel-server", "linux-image-amd64", "vim"]
    assert again.notes == [
        f"{custom}/compute.pkglist does not exist: read the shipped {shipped}/compute.pkglist "
        f"in its place (copy it to {custom} to change it)"
    ]


def test_a_list_under_netboot_family_borrows_from_that_familys_shipped_profiles(tmp_path):
    copy = write(
        tmp_path / "install/custom/netboot/rh/service/my.pkglist", "#INCLUDE:compute.pkglist#\n"
    )
    result = read(str(copy))
    assert result.files[1] == shipped_dir("rh") / "compute.pkglist"
    assert "NetworkManager" in result.install  # the Red Hat list, not Debian's
    assert len(result.notes) == 1


def test_an_include_found_nowhere_still_names_the_missing_file(tmp_path):
    shipped = tmp_path / "shipped"
    write(shipped / "compute.pkglist", "systemd\n")
    top = write(tmp_path / "custom/a.pkglist", "#INCLUDE:nosuch.pkglist#\n")
    with pytest.raises(PkglistError) as caught:
        read(str(top), shipped=shipped)
    assert str(caught.value) == f"{top}:1: pkglist {top.parent}/nosuch.pkglist does not exist"
    # An absolute name means that file: never one of the same name elsewhere.
    absolute = write(tmp_path / "custom/b.pkglist", f"#INCLUDE:{tmp_path}/compute.pkglist#\n")
    with pytest.raises(PkglistError) as caught:
        read(str(absolute), shipped=shipped)
    assert str(caught.value).endswith(f"pkglist {tmp_path}/compute.pkglist does not exist")

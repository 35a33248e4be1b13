"""xCAT's usage texts of the definition commands and nodels, word for word.

xCAT prints them for a command given no arguments (mkdef, chdef, rmdef), for
-h, and after an error in the command line; administrators' scripts and
eyes know them.  The texts are xCAT's own (DBobjectdefs.pm's defmk_usage,
defch_usage, defls_usage and defrm_usage; tabutils.pm's nodels usage); the
list of object types is this project's, in the form each xCAT command
prints it.
"""

from __future__ import annotations

from ..store.objtypes import TYPES

# Each tuple holds the lines of xCAT's response, each of which the client
# prints with a newline after it; {types} is the list of object types.
_TEXTS = {
    "mkdef": (
        "\nUsage: mkdef - Create xCAT data object definitions.\n",
        "  mkdef [-h | --help ] [-t object-types]\n",
        "  mkdef [-V | --verbose] [-t object-types] [--template template-object-name]",
        "      [-o object-names] [-z|--stanza ]",
        "      [-d | --dynamic] [-w attr==val [-w attr=~val] ...]",
        "      [-f | --force] [noderange] [attr=val [attr=val...]]",
    ),
    "chdef": (
        "\nUsage: chdef - Change xCAT data object definitions.\n",
        "  chdef [-h | --help ] [-t object-types]\n",
        "  chdef [-t object-types] [-o object-names] [-n new-name] [node]\n",
        "  chdef [-V | --verbose] [-t object-types] [-o object-names] [-d | --dynamic]",
        "    [-z | --stanza] [-m | --minus] [-p | --plus]",
        "    [-w attr==val [-w attr=~val] ... ] [noderange] [attr=val [attr=val...]]\n",
    ),
    "lsdef": (
        "\nUsage: lsdef - List xCAT data object definitions.\n",
        "  lsdef [-h | --help ] [-t object-types]\n",
        "  lsdef [-l|--long] [-a|--all] [-t *object-types*] [-z|--stanza]",
        "        [-i attr-list] [--template [template-object-name]] \n",
        "  lsdef [-V | --verbose] [-t object-types] [-o object-names]",
        "        [ -l | --long] [-s | --short] [-a | --all] [-z | --stanza ] [-S]",
        "        [-i attr-list] [-w attr==val [-w attr=~val] ...] [noderange]\n",
    ),
    "rmdef": (
        "\nUsage: rmdef - Remove xCAT data object definitions.\n",
        "  rmdef [-h | --help ] [-t object-types]\n",
        "  rmdef [-V | --verbose] [-t object-types] [-a | --all] [-f | --force]",
        "    [-o object-names] [-C | --cleanup] [noderange]\n",
    ),
}

_TYPES_FOOTER = (
    "\nThe following data object types are supported by xCAT:\n",
    "{types}\n",
    "\nUse the '-h' option together with the '-t <object-types>' option to",
    " get a list of valid attribute names for each object type.\n",
)

NODELS = (
    "Usage:\n"
    "  nodels [noderange] [-b|--blame] [-H|--with-fieldname] [table.attribute | shortname] "
    "[-S][...]\n"
    "  nodels {-v|--version}\n"
    "  nodels [-?|-h|--help]"
)


def usage(command: str) -> str:
    """The usage text of a definition command, as one block of output.

    chdef lists the types comma-separated; the others put a space before
    each, leading space included, as xCAT's usage subroutines do."""
    names = sorted(TYPES)
    types = ",".join(names) if command == "chdef" else "".join(f" {name}" for name in names)
    lines = (*_TEXTS[command], *_TYPES_FOOTER)
    return "\n".join(lines).replace("{types}", types)

"""python -m jobs.config --schemas FOLDER: the conf files' JSON Schemas, for editors."""

import sys
from pathlib import Path

from jobs.config.files import write_schemas

if sys.argv[1:2] != ["--schemas"] or len(sys.argv) != 3:
    sys.exit("usage: python -m jobs.config --schemas FOLDER")
for path in write_schemas(Path(sys.argv[2])):
    print(path)

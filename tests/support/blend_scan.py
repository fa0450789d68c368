"""Where some bytes sit in a saved ``.blend``: the block and, through the
file's own DNA, the struct and field that hold them.

A ``.blend`` is a header and a list of blocks (a 4-letter code, a length, the
old memory address, the index of the struct in the file's DNA, a count), then
the struct data as it was in memory. ``find`` names each place a needle is
found, so a test that finds a secret in a saved file says which data holds it
(``ID.name`` of an object, the padding of a mesh, a string buffer's unused
tail...). Uncompressed files only (``save_as_mainfile(compress=False)``).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Found:
    code: str  # the block's code: "OB", "ME", "DATA", "WM", "TEST" ...
    struct: str  # the DNA struct of the block
    field: str  # the field holding the needle's first byte, or "" (raw data, padding)
    block_offset: int  # where the needle starts inside the block's data
    file_offset: int

    def __str__(self) -> str:
        where = f"{self.struct}.{self.field}" if self.field else self.struct
        return f"{self.code} block ({where}, offset {self.block_offset}) at byte {self.file_offset}"


@dataclass(frozen=True)
class _Block:
    code: str
    sdna: int
    count: int
    start: int  # file offset of the data
    size: int


def _blocks(data: bytes) -> tuple[list[_Block], int, str]:
    if not data.startswith(b"BLENDER"):
        raise ValueError("not an uncompressed .blend")
    if data[7:8] in (b"_", b"-"):  # BLENDER_v405: the classic header, 12 bytes
        pointer = 8 if data[7:8] == b"-" else 4
        endian = "<" if data[8:9] == b"v" else ">"
        offset, large = 12, False
    else:  # BLENDER17-01v0500: header size, format version; 64-bit lengths
        header_size = int(data[7:9])
        pointer, endian, offset, large = 8, "<" if data[12:13] == b"v" else ">", header_size, True
    blocks = []
    while offset < len(data):
        code = data[offset:offset + 4].rstrip(b"\0").decode("latin-1")
        if large:
            sdna, old, length, count = struct.unpack_from(endian + "iQqq", data, offset + 4)
            head = 4 + 4 + 8 + 8 + 8
        else:
            (length,) = struct.unpack_from(endian + "i", data, offset + 4)
            sdna, count = struct.unpack_from(endian + "ii", data, offset + 8 + pointer)
            head = 8 + pointer + 8
        blocks.append(_Block(code, sdna, count, offset + head, length))
        offset += head + length
        if code == "ENDB":
            break
    return blocks, pointer, endian


Field = tuple[str, str, int, int]  # name, type, offset, size


def _dna(data: bytes, block: _Block, pointer: int, endian: str) -> list[tuple[str, list[Field]]]:
    """The DNA's structs: (name, [(field, type, offset, size)])."""
    raw = data[block.start:block.start + block.size]
    position = 4  # after "SDNA"

    def expect(tag: bytes) -> None:
        nonlocal position
        position = (position + 3) & ~3
        if raw[position:position + 4] != tag:
            raise ValueError(f"DNA: {tag!r} expected")
        position += 4

    def strings() -> list[str]:
        nonlocal position
        (count,) = struct.unpack_from(endian + "i", raw, position)
        position += 4
        found = []
        for _ in range(count):
            end = raw.index(b"\0", position)
            found.append(raw[position:end].decode("latin-1"))
            position = end + 1
        return found

    expect(b"NAME")
    names = strings()
    expect(b"TYPE")
    types = strings()
    expect(b"TLEN")
    lengths = list(struct.unpack_from(endian + f"{len(types)}h", raw, position))
    position += 2 * len(types)
    expect(b"STRC")
    (count,) = struct.unpack_from(endian + "i", raw, position)
    position += 4
    structs = []
    for _ in range(count):
        type_index, field_count = struct.unpack_from(endian + "hh", raw, position)
        position += 4
        fields = []
        at = 0
        for _ in range(field_count):
            field_type, field_name = struct.unpack_from(endian + "hh", raw, position)
            position += 4
            name = names[field_name]
            size = pointer if name.startswith("*") or name.startswith("(*") else lengths[field_type]
            for part in name.split("[")[1:]:
                size *= int(part.rstrip("]") or 1)
            fields.append((name, types[field_type], at, size))
            at += size
        structs.append((types[type_index], fields))
    return structs


def _field_path(structs: dict[str, list[Field]], fields: list[Field], at: int) -> str:
    """The field at byte ``at`` of a struct, through nested structs: ``id.name[66]``."""
    for name, type_name, offset, size in fields:
        if offset <= at < offset + size:
            nested = structs.get(type_name) if not name.startswith(("*", "(*")) else None
            if nested:
                width = sum(field[3] for field in nested) or 1
                inner = _field_path(structs, nested, (at - offset) % width)
                return f"{name}.{inner}" if inner else name
            return name
    return ""


def find(path: Path, needle: bytes) -> list[Found]:
    """Every place ``needle`` sits in the uncompressed ``.blend`` at ``path``."""
    data = path.read_bytes()
    blocks, pointer, endian = _blocks(data)
    dna_block = next((block for block in blocks if block.code == "DNA1"), None)
    structs = _dna(data, dna_block, pointer, endian) if dna_block is not None else []
    found = []
    start = data.find(needle)
    while start >= 0:
        block = next((b for b in blocks if b.start - 32 <= start < b.start + b.size), None)
        if block is None:
            found.append(Found("?", "?", "", 0, start))
        else:
            inside = start - block.start
            name, fields = structs[block.sdna] if 0 <= block.sdna < len(structs) else ("?", [])
            struct_size = sum(field[3] for field in fields) or 1
            at = inside % struct_size if block.count > 1 else inside
            found.append(Found(block.code, name, _field_path(dict(structs), fields, at), inside, start))
        start = data.find(needle, start + 1)
    return found


if __name__ == "__main__":
    for place in find(Path(sys.argv[1]), sys.argv[2].encode()):
        print(place)

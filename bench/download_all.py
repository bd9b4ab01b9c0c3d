""" "Download all" benchmark: every part of a message of thousands of tiny parts, in one walk or part by part.

    .venv/bin/python bench/download_all.py              # 3,000 parts
    .venv/bin/python bench/download_all.py --parts 500

Plain Python (fetcher.mail.mime only): no database, no Django. The part-by-part figure is measured on
the first 20 parts and scaled to all of them, as the zip used to do it.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fetcher.mail import mime


def many_parts(count: int) -> bytes:
    parts = [
        "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="p{n}.bin"\r\n\r\n'
        f"{base64.b64encode(f'part {n}'.encode()).decode()}\r\n"
        for n in range(count)
    ]
    head = 'From: x@example.com\r\nSubject: Many\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    return (head + "".join(parts) + "--b--\r\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=3000)
    raw = many_parts(parser.parse_args().parts)
    indexes = range(mime.MAX_PARTS)

    started = time.perf_counter()
    walked = list(mime.parts_content(raw, indexes))
    once = time.perf_counter() - started
    started = time.perf_counter()
    for index in range(1, 21):
        mime.part_content(raw, index)
    each = (time.perf_counter() - started) / 20

    print(f"message: {len(raw) / 1024:.0f} KB, {len(walked)} parts read")
    print(f"one walk (parts_content):      {once:.2f} s")
    print(f"part by part (part_content):   {each * len(walked):.1f} s ({each * 1000:.0f} ms a part)")


if __name__ == "__main__":
    main()

"""Build pyterrier_clirkd/data/projection_sample.txt: English passages for PCA-initialised ColBERT heads.

Takes 3,000 WordNet 3.0 noun glosses (Debian package `wordnet-base`, WordNet licence, see
pyterrier_clirkd/data/README.md), chosen with a fixed seed among the glosses that the bundled `countries`
collection does NOT use, so the head is not fitted on any evaluation passage.

    python scripts/build_projection_sample.py [DIR_WITH_data.noun]   # default: fetch wordnet-base with apt-get
"""
import gzip
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = 3000


def wordnet_dir() -> Path:
    tmp = Path(tempfile.mkdtemp())
    subprocess.run(["apt-get", "download", "wordnet-base"], cwd=tmp, check=True)
    deb = next(tmp.glob("wordnet-base_*.deb"))
    subprocess.run(["dpkg", "-x", str(deb), str(tmp / "root")], check=True)
    return tmp / "root" / "usr" / "share" / "wordnet"


def glosses(data_noun: Path) -> list[str]:
    out = []
    for line in data_noun.read_text(encoding="latin-1").splitlines():
        if line.startswith("  ") or "|" not in line:
            continue  # licence header
        gloss = line.split("|", 1)[1].strip()
        if gloss:
            out.append(" ".join(gloss.split()))
    return out


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else wordnet_dir()
    with gzip.open(ROOT / "pyterrier_clirkd" / "datasets" / "data" / "countries.docs.jsonl.gz", "rt") as f:
        used = {" ".join(json.loads(line)["text"].split()) for line in f}
    pool = sorted({g for g in glosses(source / "data.noun")} - used)
    sample = random.Random(12345).sample(pool, SIZE)
    target = ROOT / "pyterrier_clirkd" / "data" / "projection_sample.txt"
    target.write_text("\n".join(sample) + "\n", encoding="utf-8")
    print(f"wrote {len(sample)} glosses (of {len(pool)} unused by the countries collection) to {target}")


if __name__ == "__main__":
    main()

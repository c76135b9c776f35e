"""``clirkd distill`` with its defaults, in both student modes, against the zero-shot teacher on the bundled Debian
FAQ (``irds:clirkd-mini/debian-faq``, ja / ko / ru): wall time of each training run and native-question MRR@10 per
language, with the teacher reading the English questions as the ceiling.

Retrieval is exhaustive exact MaxSim over float16 vectors of the passages' text (``ColBERTIndex(nbits=16)``): a
``passages="teacher"`` student searches the teacher's index, a ``passages="shared"`` one its own. The students learn
from the XOR-TyDi question translations only, never from the Debian FAQ. Example::

    python benchmarks/distill_faq.py --work /tmp/distill            # trains both students (about 10 minutes)
    python benchmarks/distill_faq.py --students student/ other/      # evaluates students trained elsewhere
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyterrier as pt

import pyterrier_clirkd as clirkd

TRANSLATIONS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "xor-tydi" / "translations"


def train_student(teacher: str, parallel: Path, passages: str, output: Path) -> float:
    """Run ``clirkd distill`` with its defaults but ``--passages``; returns its wall time in seconds."""
    command = [sys.executable, "-m", "pyterrier_clirkd.cli", "distill", "--teacher", teacher, "--parallel",
               str(parallel), "--passages", passages, "--output", str(output), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def index_for(model: clirkd.ColBERT, docs: pd.DataFrame, folder: Path) -> clirkd.ColBERTIndex:
    index = clirkd.ColBERTIndex(folder, model, nbits=16, verbose=False)
    index.index(docs.to_dict("records"))
    return index


def evaluate(teacher_name: str, students: list[Path], work: Path) -> pd.DataFrame:
    """RR@10 per language of the teacher (native and English questions) and of each student (native)."""
    ds = pt.get_dataset("irds:clirkd-mini/debian-faq")
    topics, qrels = ds.get_topics(), ds.get_qrels()
    docs = pd.DataFrame(ds.get_corpus_iter(verbose=False))[["docno", "text"]]
    teacher = clirkd.ColBERT.from_pretrained(teacher_name)
    teacher_index = index_for(teacher, docs, work / "teacher.colbert")
    systems = [teacher_index.retriever(10, exhaustive=True),
               pt.apply.query(lambda row: row["query_en"]) >> teacher_index.retriever(10, exhaustive=True)]
    names = ["teacher, native questions (zero-shot)", "teacher, English questions (ceiling)"]
    for n, path in enumerate(students):
        student = clirkd.ColBERT.from_pretrained(path)
        if student.passage_fingerprint() == teacher.fingerprint():
            systems.append(teacher_index.retriever(10, exhaustive=True, query_model=student))
            names.append(f"{path.name} (teacher's index)")
        else:
            systems.append(index_for(student, docs, work / f"student{n}.colbert").retriever(10, exhaustive=True))
            names.append(f"{path.name} (own index)")
    return clirkd.measures.per_language(systems, topics, qrels, [pt.measures.RR @ 10], names=names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", nargs="+", type=Path, help="evaluate these saved students instead of training")
    parser.add_argument("--teacher", default="offline:me5-small")
    parser.add_argument("--parallel", type=Path, default=TRANSLATIONS, help="XOR-TyDi translations folder")
    parser.add_argument("--work", type=Path, help="keep students and indexes here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        students = args.students
        if not students:
            students = []
            for passages in ("teacher", "shared"):
                output = work / f"student-{passages}"
                seconds = train_student(args.teacher, args.parallel, passages, output)
                print(f"clirkd distill --passages {passages} (defaults otherwise): {seconds:.0f} s wall")
                students.append(output)
        table = evaluate(args.teacher, students, work)
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()

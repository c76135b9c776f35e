"""The notebooks: committed without outputs; 01 and 02 run end to end in a real Jupyter kernel on small settings
(``CLIRKD_NOTEBOOK_SMALL=1``); 03 (full scale, GPU) runs only its cheap cells unless ``CLIRKD_FULL_SCALE=1``."""
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def execute(name: str, folder: Path, monkeypatch) -> list[str]:
    """Run a notebook in a python3 kernel with ``folder`` as its working directory; returns each code cell's output
    as text (streams, plain-text results, and ``<image/png>`` for figures)."""
    monkeypatch.setenv("CLIRKD_NOTEBOOK_SMALL", "1")
    monkeypatch.delenv("CLIRKD_FULL_SCALE", raising=False)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()  # raises on any cell's error
    texts = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for output in cell.outputs:
            assert output.output_type != "error"
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output:
                parts.append(output.data.get("text/plain", ""))
                if "image/png" in output.data:
                    parts.append("<image/png>")
        texts.append("\n".join(parts))
    return texts


def table_rows(text: str, names: list[str]) -> dict:
    """{system name: the numbers on its row} of a printed DataFrame whose index is the system names (a wide frame
    is printed in blocks of columns, one after the other)."""
    rows = {}
    for line in text.splitlines():
        for name in names:
            if line.startswith(name + " "):
                rows.setdefault(name, []).extend(float(x) for x in re.findall(r"\d+\.\d+", line[len(name):]))
    return rows


def output_with(outputs: list[str], marker: str) -> str:
    return next(text for text in outputs if marker in text)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_quickstart(tmp_path, monkeypatch):
    outputs = execute("01_quickstart.ipynb", tmp_path, monkeypatch)
    text = "\n".join(outputs)
    assert "40 questions: {'ja': 40}" in text and "148 passages" in text
    assert "MTQueryRewriter(TableTranslator(<40 translations>, key='qid')) >> ColBERTIndex(" in text
    names = ["zero-shot", "MT (human) >> ColBERT"]
    assert all(name in output_with(outputs, "RR@10 p-value") for name in names)
    rows = table_rows(output_with(outputs, "RR@10 ja"), names)
    assert set(rows) == set(names)
    for values in rows.values():  # RR@10 ja, RR@10 macro (one language: the same), nDCG@10 ..., R@10 ...
        assert len(values) == 6 and values[0] == values[1] and all(0 <= v <= 1 for v in values)
    assert "<image/png>" in text
    assert (tmp_path / "clirkd-quickstart" / "faq.colbert" / "pt_meta.json").exists()


def test_distillation(tmp_path, monkeypatch):
    outputs = execute("02_distillation.ipynb", tmp_path, monkeypatch)
    text = "\n".join(outputs)
    found = re.search(r"student searches the vectors of (\w+) \| teacher: (\w+)", text)
    assert found and found.group(1) == found.group(2)  # passages="teacher": the teacher's index as it is
    assert "refused:" in text and "cannot search" in text  # passages="shared": it needs its own index
    names = ["zero-shot", "MT (human) >> ColBERT", "KD student (teacher's passages)", "KD student (shared encoder)"]
    rows = table_rows(output_with(outputs, "RR@10 ja"), names)
    assert set(rows) == set(names)
    assert all(len(values) == 6 and 0 <= min(values) <= max(values) <= 1 for values in rows.values())
    assert text.count("<image/png>") == 2 and "of the gap between zero-shot and MT" in text
    work = tmp_path / "clirkd-distillation"
    for folder in ("student-teacher-passages", "student-shared", "faq-student.colbert"):
        assert (work / folder).is_dir()


def test_full_scale_notebook_is_guarded(tmp_path, monkeypatch):
    """Without CLIRKD_FULL_SCALE=1 the XOR-TyDi notebook only loads the questions and says what it would do."""
    outputs = execute("03_xor_tydi.ipynb", tmp_path, monkeypatch)
    assert "2110 questions, 1928 scored by Recall@Nkt" in outputs[1]
    assert all(text.startswith("would ") for text in outputs[2:])
    assert not any(tmp_path.iterdir())  # nothing written

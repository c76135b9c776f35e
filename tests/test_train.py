import copy
import gzip
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from pyterrier_clirkd import ColBERT
from pyterrier_clirkd.cli import main
from pyterrier_clirkd.train import (ColBERTTrainer, Distiller, TrainingConfig, greedy_alignment, ir_kd_loss,
                                    pairwise_softmax_ce, read_losses, read_parallel_files, read_parallel_folder,
                                    read_passages, read_triples, representation_kd_loss, teacher_passages, token_mse,
                                    train)
from pyterrier_clirkd.train.trainer import make_trainable, transformer_layers

TESTS = Path(__file__).parent
PAIRS = [("東京はどこ？", "Where is Tokyo?"), ("富士山の高さは？", "How high is Mount Fuji?"),
         ("誰がハムレットを書いた？", "Who wrote Hamlet?"), ("日本の首都は？", "What is the capital of Japan?"),
         ("寿司とは何？", "What is sushi?"), ("月までの距離は？", "How far is the Moon?"),
         ("水の沸点は？", "What is the boiling point of water?"), ("犬は何を食べる？", "What do dogs eat?")]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def loaded_teacher(tiny_colbert_folder):
    return ColBERT.from_pretrained(tiny_colbert_folder, device="cpu")


@pytest.fixture()
def teacher(loaded_teacher):
    return copy.deepcopy(loaded_teacher)


@pytest.fixture(scope="module")
def parallel_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parallel")
    (folder / "ja-en").mkdir()
    (folder / "ja-en" / "ja.txt").write_text("".join(ja + "\n" for ja, _ in PAIRS), encoding="utf-8")
    (folder / "ja-en" / "en.txt").write_text("".join(en + "\n" for _, en in PAIRS), encoding="utf-8")
    return folder


def parallel_frame() -> pd.DataFrame:
    return pd.DataFrame([("ja", ja, en) for ja, en in PAIRS], columns=["lang", "text", "english"])


# ---------------------------------------------------------------------------------------------------- losses
def test_pairwise_softmax_ce_by_hand():
    # -log(e^3 / (e^3 + e^1)) = log(1 + e^-2)
    assert pairwise_softmax_ce(torch.tensor([[3.0, 1.0]])).item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    # two queries, positives named explicitly (in-batch): mean of -log softmax at the positive
    scores = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]])
    expected = (math.log(3) + (math.log(math.e + math.e ** 2 + 1) - 2)) / 2
    assert pairwise_softmax_ce(scores, torch.tensor([2, 1])).item() == pytest.approx(expected, abs=1e-6)


def test_ir_kd_loss_by_hand():
    s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    # T = 1: KL([.5, .5] || softmax([1, 0])) = sum .5 (log .5 - log p_s) = log(1 + e) - 0.5 - log 2
    assert ir_kd_loss(s, t, temperature=1.0).item() == pytest.approx(math.log(1 + math.e) - 0.5 - math.log(2), abs=1e-6)
    # T = 2: scores halved, then times T^2 = 4
    expected = 4 * (math.log(1 + math.exp(0.5)) - 0.25 - math.log(2))
    assert ir_kd_loss(s, t).item() == pytest.approx(expected, abs=1e-6)
    # identical scores: no loss; and the teacher never gets a gradient
    same = torch.tensor([[2.0, -1.0, 0.5]], requires_grad=True)
    teacher = torch.tensor([[2.0, -1.0, 0.5]], requires_grad=True)
    loss = ir_kd_loss(same, teacher)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    loss.backward()
    assert teacher.grad is None
    # a masked candidate is ignored: equal to the loss over the first two columns
    s3, t3 = torch.tensor([[1.0, 0.0, 9.0]]), torch.tensor([[0.0, 0.0, -9.0]])
    mask = torch.tensor([[True, True, False]])
    assert ir_kd_loss(s3, t3, 1.0, mask).item() == pytest.approx(math.log(1 + math.e) - 0.5 - math.log(2), abs=1e-6)


def test_token_and_representation_losses_by_hand():
    student = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    teacher = torch.tensor([[[0.0, 0.0], [0.0, 3.0]]])
    # squared distances per token: 1 and 4 -> mean 2.5
    assert token_mse(student, teacher).item() == pytest.approx(2.5)
    # only the first token counts
    assert token_mse(student, teacher, torch.tensor([[True, False]])).item() == pytest.approx(1.0)
    q_s, q_t = torch.tensor([[[1.0, 1.0]]]), torch.tensor([[[1.0, -1.0]]])   # squared distance 4
    p_s = torch.tensor([[[2.0, 0.0], [5.0, 5.0]]])
    p_t = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])                            # 4, and 50 for a masked token
    mask = torch.tensor([[True, False]])
    assert representation_kd_loss(q_s, q_t, p_s, p_t, mask).item() == pytest.approx(0.5 * 4 + 0.5 * 4)
    assert representation_kd_loss(q_s, q_t, p_s, p_t, mask, query_weight=0.25).item() == pytest.approx(0.25 * 4 + 0.75 * 4)
    assert representation_kd_loss(q_s, q_t, p_s, p_t).item() == pytest.approx(0.5 * 4 + 0.5 * 27)
    assert representation_kd_loss(q_s, q_t, query_weight=0.5).item() == pytest.approx(2.0)   # no passage term
    with pytest.raises(ValueError, match="both"):
        representation_kd_loss(q_s, q_t, p_s)


# ---------------------------------------------------------------------------------------------------- alignment
E1, E2, E3 = torch.eye(3)


def test_greedy_alignment_follows_a_cycle():
    # D = 1 - cos; teacher rows (e1, e2, e3), student columns (e2, e3, e1):
    #   [[1 1 0]      step 1: first zero (0, 2): swap rows 0, 2 -> teacher order (t2, t1, t0); block row/col 2
    #    [0 1 1]      step 2: first zero (0, 1): swap rows 0, 1 -> (t1, t2, t0); block row/col 1
    #    [1 0 1]]     step 3: (0, 0)                         -> perm [1, 2, 0]
    teacher, student = torch.stack([E1, E2, E3]), torch.stack([E2, E3, E1])
    perm = greedy_alignment(teacher, student)
    assert perm.dtype == torch.long and perm.tolist() == [1, 2, 0]
    assert torch.equal(teacher[perm], student)


def test_greedy_alignment_ties_row_major_on_the_swapped_rows():
    # teacher (e1, e1, e2), student (e2, e2, e2): D = [[1 1 1], [1 1 1], [0 0 0]]
    # step 1: first minimum (2, 0): swap rows 2, 0 -> order (t2, t1, t0), D = [[0 0 0], [1 1 1], [1 1 1]];
    #         block row 0 and column 0
    # step 2: all remaining entries are 1; the first in row-major order is (1, 1): t1 stays; block row/col 1
    # step 3: (2, 2): t0 stays at position 2 -> perm [2, 1, 0] (matching by the original row order would give [2, 0, 1])
    teacher, student = torch.stack([E1, E1, E2]), torch.stack([E2, E2, E2])
    assert greedy_alignment(teacher, student).tolist() == [2, 1, 0]
    # identical rows everywhere: every step takes the diagonal, nothing moves
    assert greedy_alignment(torch.ones(4, 3), torch.ones(4, 3)).tolist() == [0, 1, 2, 3]


def test_greedy_alignment_batched_and_always_a_permutation():
    torch.manual_seed(0)
    teacher, student = torch.randn(5, 7, 4), torch.randn(5, 7, 4)
    perms = greedy_alignment(teacher, student)
    assert perms.shape == (5, 7)
    for row in range(5):
        assert perms[row].tolist() == greedy_alignment(teacher[row], student[row]).tolist()
        assert sorted(perms[row].tolist()) == list(range(7))
    # a student that is a shuffled teacher is matched exactly
    order = torch.randperm(7)
    assert torch.equal(teacher[0][greedy_alignment(teacher[0], teacher[0][order])], teacher[0][order])
    with pytest.raises(ValueError, match="shape|tokens"):
        greedy_alignment(torch.zeros(3, 2), torch.zeros(4, 2))


# ---------------------------------------------------------------------------------------------------- readers
def test_read_triples_with_english_twin(tmp_path):
    (tmp_path / "t.tsv").write_text("東京は？\tTokyo is a city.\tParis is a city.\n"
                                    "富士山は？\tFuji is a mountain.\tThe Alps are mountains.\n", encoding="utf-8")
    (tmp_path / "q.en").write_text("Where is Tokyo?\nWhat is Fuji?\n")
    (tmp_path / "t.en.tsv").write_text("Where is Tokyo?\tTokyo is a city.\tParis is a city.\n"
                                       "What is Fuji?\tFuji is a mountain.\tThe Alps are mountains.\n")
    triples = read_triples(tmp_path / "t.tsv")
    assert list(triples.columns) == ["query", "positive", "negatives"]
    assert triples.iloc[1].tolist() == ["富士山は？", "Fuji is a mountain.", ("The Alps are mountains.",)]
    for twin in ("q.en", "t.en.tsv"):   # the English question alone, or a whole twin triples line
        assert read_triples(tmp_path / "t.tsv", english=tmp_path / twin)["english"].tolist() == \
            ["Where is Tokyo?", "What is Fuji?"]
    (tmp_path / "short.en").write_text("Where is Tokyo?\n")
    with pytest.raises(ValueError, match="row-aligned"):
        read_triples(tmp_path / "t.tsv", english=tmp_path / "short.en")
    (tmp_path / "swapped.en.tsv").write_text("Where is Tokyo?\tFuji is a mountain.\tParis is a city.\n"
                                             "What is Fuji?\tFuji is a mountain.\tThe Alps are mountains.\n")
    with pytest.raises(ValueError, match="line 1 differ"):
        read_triples(tmp_path / "t.tsv", english=tmp_path / "swapped.en.tsv")
    (tmp_path / "bad.tsv").write_text("a question\tonly a positive\n")
    with pytest.raises(ValueError, match="bad.tsv:1"):
        read_triples(tmp_path / "bad.tsv")


def test_read_parallel_folder_and_files(tmp_path, parallel_folder):
    pairs = read_parallel_folder(parallel_folder)
    assert list(pairs.columns) == ["lang", "text", "english"] and len(pairs) == len(PAIRS)
    assert pairs.iloc[2].tolist() == ["ja", "誰がハムレットを書いた？", "Who wrote Hamlet?"]
    # a second language, gzipped; picking languages
    (tmp_path / "ko-en").mkdir()
    with gzip.open(tmp_path / "ko-en" / "ko.txt.gz", "wt", encoding="utf-8") as f:
        f.write("도쿄는 어디?\n\n")
    (tmp_path / "ko-en" / "en.txt").write_text("Where is Tokyo?\nan orphan line\n")
    ko = read_parallel_folder(tmp_path, langs=["ko"])
    assert ko.values.tolist() == [["ko", "도쿄는 어디?", "Where is Tokyo?"]]   # the pair with an empty side is dropped
    with pytest.raises(ValueError, match="fi"):
        read_parallel_folder(tmp_path, langs=["fi"])
    # OPUS style: two line-aligned files
    (tmp_path / "a.ru").write_text("Где Токио?\nКто написал Гамлета?\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("Where is Tokyo?\nWho wrote Hamlet?\n")
    assert read_parallel_files(tmp_path / "a.ru", tmp_path / "a.en", lang="ru")["text"].tolist() == \
        ["Где Токио?", "Кто написал Гамлета?"]
    (tmp_path / "b.en").write_text("Where is Tokyo?\n")
    with pytest.raises(ValueError, match="line-aligned"):
        read_parallel_files(tmp_path / "a.ru", tmp_path / "b.en")
    with pytest.raises(FileNotFoundError):
        read_parallel_files(tmp_path / "missing.ru", tmp_path / "a.en")


def test_read_passages(tmp_path):
    (tmp_path / "collection.tsv").write_text("0\tTokyo is a city.\tTokyo\n1\tFuji is a mountain.\tFuji\n")
    (tmp_path / "lines.txt").write_text("Tokyo is a city.\n\nFuji is a mountain.\n")
    expected = ["Tokyo is a city.", "Fuji is a mountain."]
    assert read_passages(tmp_path / "collection.tsv") == expected == read_passages(tmp_path / "lines.txt")


# ---------------------------------------------------------------------------------------------------- the loop
class _ScaleObjective:
    """loss = mean over examples of (w * x - y)^2, optionally NaN from a given step on (counted in loss calls)."""

    def __init__(self, nan_at=None, fail_at=None):
        self.module = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.constant_(self.module.weight, 0.0)
        self.x, self.y = torch.arange(1.0, 9.0), 2.0 * torch.arange(1.0, 9.0)
        self.calls, self.nan_at, self.fail_at = 0, nan_at, fail_at

    def __len__(self):
        return 8

    def signature(self):
        return {"kind": "scale"}

    def loss(self, forward, examples):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("interrupted")
        out = forward(self.x[examples, None])[:, 0]
        loss = (out - self.y[examples]).pow(2).mean()
        return loss * float("nan") if self.calls == self.nan_at else loss


def test_loop_stops_on_nan_before_updating(tmp_path):
    objective = _ScaleObjective(nan_at=3)
    config = TrainingConfig(steps=5, batch_size=2, lr=0.1, checkpoint_every=1, verbose=False)
    with pytest.raises(FloatingPointError, match="nan at step 3"):
        train(objective, config, tmp_path / "out", save=lambda p: None)
    weight_after_two = objective.module.weight.item()
    state = torch.load(tmp_path / "out.checkpoint" / "state.pt", weights_only=False)
    assert state["step"] == 2 and state["weights"]["weight"].item() == weight_after_two != 0.0
    assert not (tmp_path / "out").exists()


def test_loop_schedule_accumulation_and_refusing_a_different_run(tmp_path):
    saved = []
    objective = _ScaleObjective()
    config = TrainingConfig(steps=4, batch_size=4, accumulation=2, lr=0.1, schedule="warmup", warmup_steps=2,
                            checkpoint_every=1, verbose=False)
    losses = train(objective, config, tmp_path / "out", save=lambda p: (p.mkdir(), saved.append(p)))
    assert saved == [tmp_path / "out"] and len(losses) == 4 and losses[-1] < losses[0]
    assert not (tmp_path / "out.checkpoint").exists()
    lrs = [float(line.split("\t")[2]) for line in (tmp_path / "out" / "losses.tsv").read_text().splitlines()]
    assert lrs == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.1])   # linear warm-up over 2 steps, then constant
    assert read_losses(tmp_path / "out" / "losses.tsv") == losses
    # an interrupted run leaves its checkpoint; resuming with another learning rate is refused, naming the change
    with pytest.raises(RuntimeError, match="interrupted"):
        train(_ScaleObjective(fail_at=3), TrainingConfig(steps=4, batch_size=2, lr=0.1, checkpoint_every=1,
                                                         verbose=False), tmp_path / "run", save=lambda p: None)
    with pytest.raises(ValueError, match=r"config\.lr \(0\.1 -> 0\.2\)"):
        train(_ScaleObjective(), TrainingConfig(steps=4, batch_size=2, lr=0.2, checkpoint_every=1, verbose=False),
              tmp_path / "run", save=lambda p: None)
    with pytest.raises(ValueError, match="schedule"):
        TrainingConfig(schedule="cosine")


# ---------------------------------------------------------------------------------------------------- trainers
def test_colbert_trainer_learns_triples(teacher, tmp_path):
    triples = pd.DataFrame({"query": [en for _, en in PAIRS], "positive": [en for _, en in PAIRS],
                            "negatives": [(PAIRS[(i + 3) % len(PAIRS)][1],) for i in range(len(PAIRS))]})
    trainer = ColBERTTrainer(teacher, in_batch_negatives=True, steps=12, batch_size=8, lr=3e-3, verbose=False)
    model = trainer.fit(triples, tmp_path / "trained")
    assert sum(trainer.losses[-3:]) < sum(trainer.losses[:3])
    reloaded = ColBERT.from_pretrained(tmp_path / "trained", device="cpu")
    assert reloaded.fingerprint() == model.fingerprint()
    assert "in_batch_negatives=True" in repr(trainer)


@pytest.mark.parametrize("passages, augmentation", [("teacher", False), ("shared", True)])
def test_distiller_modes(teacher, tmp_path, passages, augmentation):
    teacher.config.query_augmentation = augmentation
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    embeddings = teacher.encoder.get_input_embeddings().weight.detach().clone()
    distiller = Distiller(teacher, passages=passages, freeze_embeddings=True, steps=10, batch_size=8, lr=3e-3,
                          verbose=False)
    student = distiller.fit(parallel_frame(), tmp_path / "student")
    assert sum(distiller.losses[-3:]) < sum(distiller.losses[:3])
    # the teacher is untouched, the student learnt, its embeddings stayed frozen
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert student.fingerprint() != teacher.fingerprint()
    assert torch.equal(student.encoder.get_input_embeddings().weight, embeddings)
    reloaded = ColBERT.from_pretrained(tmp_path / "student", device="cpu")
    assert reloaded.fingerprint() == student.fingerprint()
    # a passages="teacher" student searches the teacher's passage vectors; a shared one its own
    expected = teacher.fingerprint() if passages == "teacher" else student.fingerprint()
    assert reloaded.passage_fingerprint() == expected
    assert read_losses(tmp_path / "student" / "losses.tsv") == distiller.losses


def test_freeze_layers_keeps_the_lowest_layers_fixed(teacher, tmp_path):
    student = Distiller(teacher, passages="teacher", freeze_layers=1, steps=3, batch_size=8, lr=3e-3,
                        verbose=False).fit(parallel_frame(), tmp_path / "student")
    layers = transformer_layers(student)
    assert len(layers) == teacher.encoder.config.num_hidden_layers == 2
    frozen, trained = (dict(layer.named_parameters()) for layer in layers)
    teacher_frozen, teacher_trained = (dict(layer.named_parameters()) for layer in transformer_layers(teacher))
    assert all(torch.equal(p, teacher_frozen[name]) for name, p in frozen.items())
    assert any(not torch.equal(p, teacher_trained[name]) for name, p in trained.items())
    with pytest.raises(ValueError, match="between 0 and 2, not 3"):
        make_trainable(copy.deepcopy(teacher), freeze_layers=3)
    halved = copy.deepcopy(teacher)
    make_trainable(halved, freeze_layers="half")
    assert [p.requires_grad for layer in transformer_layers(halved) for p in list(layer.parameters())[:1]] == \
        [False, True]


def test_distiller_ir_kd_over_triples_passages(teacher, tmp_path):
    rows = pd.DataFrame({"query": [ja for ja, _ in PAIRS], "english": [en for _, en in PAIRS],
                         "positive": [en for _, en in PAIRS],
                         "negatives": [(PAIRS[(i + 1) % 8][1], PAIRS[(i + 2) % 8][1]) for i in range(8)]})
    distiller = Distiller(teacher, representation_weight=0.0, steps=3, batch_size=4, verbose=False)
    distiller.fit(rows, tmp_path / "student")
    assert len(distiller.losses) == 3 and all(math.isfinite(v) and v >= 0 for v in distiller.losses)
    with pytest.raises(ValueError, match="english"):
        distiller.fit(rows.drop(columns=["english"]), tmp_path / "other")


def test_teacher_passages_are_its_exact_maxsim_top_k(loaded_teacher):
    corpus = [en for _, en in PAIRS] + ["Tokyo is the capital of Japan.", "Hamlet is a tragedy.", "Dogs eat meat."]
    questions = ["Where is Tokyo?", "Who wrote Hamlet?"]
    out = teacher_passages(loaded_teacher, questions, corpus, k=3, sampled=2, seed=1)
    Q = loaded_teacher.encode_queries(questions)
    D = loaded_teacher.encode_docs(corpus)
    for q, passages in zip(Q, out):
        scores = [sum(max(float(v @ d) for d in doc) for v in q) for doc in D]   # MaxSim written out
        best = sorted(range(len(corpus)), key=lambda i: -scores[i])[:3]
        assert list(passages[:3]) == [corpus[i] for i in best]
        assert len(passages) == 5 and not set(passages[3:]) & set(passages[:3])
    assert teacher_passages(loaded_teacher, questions, corpus, k=3, sampled=2, seed=1) == out
    with pytest.raises(ValueError, match="k \\+ sampled"):
        teacher_passages(loaded_teacher, questions, corpus[:4], k=3, sampled=2)


# ---------------------------------------------------------------------------------------------------- processes
def _helper(*args, torchrun=False):
    env = {**os.environ, "PYTHONPATH": str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"] if torchrun \
        else [sys.executable]
    return subprocess.run([*launcher, str(TESTS / "train_helper.py"), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=600)


def test_resume_after_sigkill_gives_the_same_losses(tiny_colbert_folder, parallel_folder, tmp_path):
    done = _helper(tiny_colbert_folder, parallel_folder, tmp_path / "straight")
    assert done.returncode == 0, done.stderr[-2000:]
    killed = _helper(tiny_colbert_folder, parallel_folder, tmp_path / "resumed", "--kill-at", 5)
    assert killed.returncode == -signal.SIGKILL
    checkpoint = tmp_path / "resumed.checkpoint"
    assert torch.load(checkpoint / "state.pt", weights_only=False)["step"] == 4
    assert len((checkpoint / "losses.tsv").read_text().splitlines()) == 4
    resumed = _helper(tiny_colbert_folder, parallel_folder, tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "resumed" / "losses.tsv").read_text() == (tmp_path / "straight" / "losses.tsv").read_text()
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_process_gloo_matches_one_process(tiny_colbert_folder, parallel_folder, tmp_path):
    # one process with 2 micro-batches of 2 sees the same examples together as each of 2 processes with 2
    one = _helper(tiny_colbert_folder, parallel_folder, tmp_path / "one", "--accumulation", 2, "--no-dropout",
                  "--steps", 3)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _helper(tiny_colbert_folder, parallel_folder, tmp_path / "two", "--no-dropout", "--steps", 3, torchrun=True)
    assert two.returncode == 0, two.stderr[-3000:]
    a = load_file(str(tmp_path / "one" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert set(a) == set(b)
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert read_losses(tmp_path / "one" / "losses.tsv") == pytest.approx(read_losses(tmp_path / "two" / "losses.tsv"),
                                                                         abs=1e-5)
    start = load_file(str(tiny_colbert_folder / "model.safetensors"))
    assert max((a[k] - start[k]).abs().max().item() for k in a) > 1e-4    # training did move the weights


# ---------------------------------------------------------------------------------------------------- command line
@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["distill", "--help"]])
def test_cli_help(argv, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: clirkd") and ("--teacher" in out if "distill" in argv else True)


def test_cli_bad_arguments_give_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit:
        main(["distill", "--teacher", "x", "--output", str(tmp_path), "--steps", "many"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and len(err.strip().splitlines()) == 1 and "--steps" in err and "Traceback" not in err
    status = main(["distill", "--teacher", "x", "--parallel", str(tmp_path / "missing"), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 1 and err.strip().splitlines() == [f"clirkd distill: error: {tmp_path / 'missing'}: no such folder"]
    status = main(["train", "--model", "x", "--triples", str(tmp_path / "t.tsv"), "--output", str(tmp_path / "o")])
    assert status == 1 and "no such file" in capsys.readouterr().err


def test_cli_distill_end_to_end(tiny_colbert_folder, loaded_teacher, parallel_folder, tmp_path, capsys):
    out = tmp_path / "student"
    argv = ["distill", "--teacher", str(tiny_colbert_folder), "--parallel", str(parallel_folder), "--output", str(out),
            "--steps", "2", "--batch-size", "4", "--quiet"]
    assert main(argv) == 0
    student = ColBERT.from_pretrained(out, device="cpu")
    assert student.passage_fingerprint() == loaded_teacher.fingerprint()
    assert len(read_losses(out / "losses.tsv")) == 2
    assert main(argv) == 1 and "already holds a trained model" in capsys.readouterr().err

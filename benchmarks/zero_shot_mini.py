"""Zero-shot MRR@10 of the offline backbone (``ColBERT.from_pretrained("offline:me5-small")``) on the bundled
collections: every query is scored by MaxSim against every document of the collection (exhaustive
re-scoring, no index), for native and English (``query_en``) queries, with the documents' ``text`` alone and
with ``title + ": " + text``.

The countries collection has 20,209 documents, which take about 15 minutes to encode per variant on one CPU
core; ``--countries-docs N`` keeps its 209 relevant documents plus a seeded sample of distractors, N in all
(0: every document). Example::

    python benchmarks/zero_shot_mini.py --threads 1                    # countries over 2,000 documents
    python benchmarks/zero_shot_mini.py --countries-docs 0             # every document (slow on a CPU)

Measured (one CPU thread, 688 s), macro MRR@10 over languages:

    debian-faq (148 docs)       query -> text 0.317   query -> title: text 0.622
                                query_en -> text 0.442   query_en -> title: text 0.823
    countries (2,000 of 20,209) query -> text 0.004   query -> title: text 0.009   (random: 0.0015)
                                query_en -> text 0.024   query_en -> title: text 0.053

Zero-shot, a one- or two-word query is scored mostly by its ~28 augmentation (pad) vectors, which prefer
some documents whatever the query (``France`` puts "France, French Republic: ..." 10th of 31 documents).
"""
import argparse
import time

import numpy as np
import pandas as pd
import pyterrier as pt
import torch

import pyterrier_clirkd as clirkd


def maxsim_top(model: clirkd.ColBERT, Q: torch.Tensor, D: list, k: int = 10) -> tuple:
    """Indices and scores of the ``k`` best documents for each encoded query, by MaxSim over all documents."""
    scores = torch.empty((len(Q), len(D)))
    by_length = np.argsort([len(d) for d in D], kind="stable")
    for start in range(0, len(D), 256):
        bucket = by_length[start:start + 256]
        width = max(1, max(len(D[i]) for i in bucket))
        padded = torch.zeros((len(bucket), width, Q.shape[-1]))
        mask = torch.zeros((len(bucket), width), dtype=torch.bool)
        for row, i in enumerate(bucket):
            padded[row, :len(D[i])] = torch.from_numpy(D[i])
            mask[row, :len(D[i])] = True
        for q_start in range(0, len(Q), 32):
            scores[q_start:q_start + 32, torch.from_numpy(bucket)] = clirkd.maxsim(
                Q[q_start:q_start + 32, None], padded[None], mask[None], model.config.similarity)
    top = scores.topk(min(k, len(D)), dim=1)
    return top.indices.numpy(), top.values.numpy()


def evaluate(name: str, model, countries_docs: int, seed: int) -> pd.DataFrame:
    ds = pt.get_dataset(f"irds:clirkd-mini/{name}")
    topics, qrels = ds.get_topics(), ds.get_qrels()
    docs = pd.DataFrame(ds.get_corpus_iter(verbose=False))
    if name == "countries" and countries_docs:
        relevant = docs["docno"].isin(qrels["docno"])
        others = docs[~relevant].sample(countries_docs - int(relevant.sum()), random_state=seed)
        docs = pd.concat([docs[relevant], others]).reset_index(drop=True)
    texts = list(dict.fromkeys(list(topics["query"]) + list(topics["query_en"])))   # each distinct text once
    Q = torch.from_numpy(model.encode_queries(texts))
    row_of = {t: i for i, t in enumerate(texts)}
    systems, names = [], []
    for doc_field, doc_texts in (("text", docs["text"]), ("title: text", docs["title"] + ": " + docs["text"])):
        indices, values = maxsim_top(model, Q, model.encode_docs(list(doc_texts)))
        for query_field in ("query", "query_en"):
            rows = [(qid, docs["docno"].iloc[d], float(values[row_of[q]][rank]), rank)
                    for qid, q in zip(topics["qid"], topics[query_field])
                    for rank, d in enumerate(indices[row_of[q]])]
            systems.append(pd.DataFrame(rows, columns=["qid", "docno", "score", "rank"]))
            names.append(f"{query_field} -> {doc_field}")
    table = clirkd.measures.per_language(systems, topics, qrels, [pt.measures.RR @ 10], names=names)
    print(f"\nclirkd-mini/{name}: {len(topics)} queries over {len(docs)} documents")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="offline:me5-small")
    parser.add_argument("--countries-docs", type=int, default=2000, help="0: all 20,209")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    model = clirkd.ColBERT.from_pretrained(args.model)
    for name in ("debian-faq", "countries"):
        table = evaluate(name, model, args.countries_docs, args.seed)
        print(table.round(3).to_string(index=False))
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()

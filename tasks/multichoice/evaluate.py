"""Zero-shot multiple-choice accuracy: argmax over the summed log-probabilities of the choices."""

from ..scoring import score_samples


class _Flat:
    """Every choice of every example as one list of samples (so choices batch together)."""

    def __init__(self, dataset):
        self.items = [dataset[i] for i in range(len(dataset))]
        self.index = [(i, j) for i, item in enumerate(self.items) for j in range(len(item["samples"]))]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, k):
        i, j = self.index[k]
        return self.items[i]["samples"][j]


def evaluate_multichoice(model, dataset, batch_size=1, device=None, length_penalty=0.0):
    """``{"accuracy", "correct", "examples", "predictions"}``; ``length_penalty`` divides a choice's
    score by ``tokens ** length_penalty`` (0 = plain sum, the default)."""
    flat = _Flat(dataset)
    results = score_samples(model, flat, batch_size=batch_size, device=device)
    scores = [[] for _ in flat.items]
    for (i, _), (logprob, count, _) in zip(flat.index, results):
        scores[i].append(logprob / (count ** length_penalty if length_penalty else 1.0))
    predictions = [max(range(len(s)), key=s.__getitem__) for s in scores]
    correct = sum(p == item["label"] for p, item in zip(predictions, flat.items))
    return {"accuracy": 100.0 * correct / len(flat.items), "correct": correct, "examples": len(flat.items),
            "predictions": [{"uid": item["uid"], "prediction": p, "label": item["label"], "scores": s}
                            for p, item, s in zip(predictions, flat.items, scores)]}

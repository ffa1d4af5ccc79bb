"""Out-of-fold comparison of model settings on a token dump from `spamctl tokens`.

Run it through scripts/model-experiments, which installs its Python packages. Each variant is
a comma-separated list of settings that differ from the shipped ones:

    values=presence|log_count   token values before unit-length scaling
    alpha=FLOAT                  L2 penalty (liblinear C = 1 / alpha, as in linfa-logistic)
    vocabulary=INT               largest vocabulary, chosen by chi-square (0 here means every
                                 candidate; `spamctl train` has no such setting)
    grams=INT                    add a block of at most INT character 4-grams of the words,
                                 chosen by chi-square like the tokens, as
                                 `spamctl train --max-character-grams INT` does (off when 0)
    idf=POWER                    multiply each token's value by its inverse document
                                 frequency in the training part, ln((n + 1) / (df + 1)) + 1,
                                 raised to POWER, before unit-length scaling (off when 0;
                                 `spamctl train` has no such setting)
    thresholds=single|list       one threshold, or one for mail with a `List-Id` field and
                                 one for other mail, sharing the same false-positive budget
                                 (only --nested and --train-folders use thresholds;
                                 `spamctl train` chooses the pair by default, and
                                 `--list-mail-threshold false` keeps one)
    drop=PREFIX                  leave out tokens that start with PREFIX (repeatable)

With --train-folders and --test-folders (comma-separated subfolders of the corpus's spam/ and
ham/), each variant runs the whole training procedure on every message of the training
folders. The resulting model then judges the test folders. The columns are ROC AUC, recall at
0.1% and 0.5% ham false positives, and the false positives and recall at the model's own
threshold. This shows how a model carries over to mail of another time or source.
With --corrections-every N as well, the test messages arrive one at a time in the order of
their sha256, and a user corrects every wrong verdict. After every N corrections the model is
refitted on the training folders plus the corrections. It keeps its calibration and
thresholds, as the trainer service does. The columns are then the corrections, and the false
positives and recall at the threshold over all test messages and over their second half.

With --nested, each variant also runs the whole training procedure inside each fold: inner
folds, Platt calibration and the threshold for 0.1% ham false positives, then a fit on the
fold's training part. The fold's held-out messages are then judged at that threshold. This
estimates the false positives and recall of a shipped model at its own threshold.

The folds are those of `spamctl train`: each class ordered by the sha256 of the raw message
and dealt into 5 folds in turn. Scoring uses scikit-learn's liblinear on sparse data, much
faster than linfa-logistic's dense fit. Its objective differs from linfa-logistic's only in
that liblinear also penalizes the intercept, and it runs in f64 rather than f32.
"""

import argparse
import collections
import math
import sys

import numpy as np
import scipy.sparse as sparse
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

FOLDS = 5
SHIPPED = {
    "values": "presence", "alpha": 0.0001, "vocabulary": 8000, "grams": 0, "idf": 0.0,
    "thresholds": "single", "drop": [],
}
# The token of mail that came through a mailing list, for `thresholds=list`.
LIST_MAIL_TOKEN = "h:has:list-id"
# `CharacterGrams::default()`: characters per gram, and the length of the gram block of a
# feature vector against the token block's 1.
GRAM_LENGTH = 4
GRAM_SCALE = 0.5
MIN_DOCUMENT_FREQUENCY = 3
# The default of `spamctl train --max-ham-fpr`.
MAX_HAM_FPR = 0.001
# Exit status for a malformed variant, as spamflow's binaries use for a bad flag.
USAGE_ERROR = 64


def read_dump(path):
    """Returns (labels, keys, names, token lists) from a `spamctl tokens` file."""
    labels, keys, names, documents = [], [], [], []
    with open(path, encoding="utf-8") as dump:
        for number, line in enumerate(dump, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 4 or fields[0] not in ("spam", "ham"):
                sys.exit(f"{path}:{number}: not a line of `spamctl tokens` output")
            labels.append(fields[0] == "spam")
            names.append(fields[1])
            keys.append(fields[2])
            documents.append(fields[3].split(" ") if fields[3] else [])
    return np.array(labels), keys, names, documents


def stratified_folds(labels, keys):
    folds = np.zeros(len(labels), dtype=int)
    for label in (True, False):
        members = sorted((keys[i], i) for i in range(len(labels)) if labels[i] == label)
        for rank, (_, index) in enumerate(members):
            folds[index] = rank % FOLDS
    return folds


def parse_variant(text):
    settings = dict(SHIPPED, drop=[])
    settings_named = set()
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name in settings_named and name != "drop":
            print(f"variant {text!r}: {name} is set twice; give it once", file=sys.stderr)
            sys.exit(USAGE_ERROR)
        settings_named.add(name)
        try:
            if name == "values" and value in ("presence", "log_count"):
                settings["values"] = value
            elif name == "alpha" and math.isfinite(float(value)) and float(value) > 0:
                settings["alpha"] = float(value)
            elif name == "vocabulary" and int(value) >= 0:
                settings["vocabulary"] = int(value)
            elif name == "grams" and int(value) >= 0:
                settings["grams"] = int(value)
            elif name == "idf" and math.isfinite(float(value)) and float(value) >= 0:
                settings["idf"] = float(value)
            elif name == "thresholds" and value in ("single", "list"):
                settings["thresholds"] = value
            elif name == "drop" and value:
                settings["drop"].append(value)
            else:
                raise ValueError(item)
        except ValueError:
            print(
                f"variant {text!r}: cannot read {item!r}; expected values=presence|log_count, "
                "alpha=POSITIVE_NUMBER, vocabulary=COUNT, grams=COUNT, idf=POWER, "
                "thresholds=single|list or drop=PREFIX",
                file=sys.stderr,
            )
            sys.exit(USAGE_ERROR)
    return settings


def vocabulary(documents, labels, size):
    frequency, spam_frequency = collections.Counter(), collections.Counter()
    for document, label in zip(documents, labels):
        present = set(document)
        frequency.update(present)
        if label:
            spam_frequency.update(present)
    n, spam = len(documents), int(sum(labels))
    ham = n - spam

    def chi_square(token):
        a = spam_frequency[token]
        b = frequency[token] - a
        c, d = spam - a, ham - b
        denominator = (a + b) * (c + d) * (a + c) * (b + d)
        return n * (a * d - b * c) ** 2 / denominator if denominator else 0.0

    candidates = [token for token, count in frequency.items() if count >= MIN_DOCUMENT_FREQUENCY]
    if size and len(candidates) > size:
        candidates.sort(key=lambda token: (-chi_square(token), token))
        candidates = candidates[:size]
    return {token: index for index, token in enumerate(sorted(candidates))}


def inverse_document_frequency(documents, index, power):
    """Returns the weight ln((n + 1) / (df + 1)) + 1 of each vocabulary entry, raised to
    `power`. df counts the `documents` that contain the entry. Returns None when `power` is 0."""
    if not power:
        return None
    frequency = collections.Counter()
    for document in documents:
        frequency.update(token for token in set(document) if token in index)
    n = len(documents)
    return {token: (math.log((n + 1) / (frequency[token] + 1)) + 1) ** power for token in index}


def matrix(documents, index, values, idf=None):
    rows, columns, data = [], [], []
    for row, document in enumerate(documents):
        counts = collections.Counter(token for token in document if token in index)
        entries = [
            (index[token], (1.0 if values == "presence" else math.log1p(count))
             * (idf[token] if idf else 1.0))
            for token, count in counts.items()
        ]
        norm = math.sqrt(sum(v * v for _, v in entries)) or 1.0
        for column, value in entries:
            rows.append(row)
            columns.append(column)
            data.append(value / norm)
    return sparse.csr_matrix((data, (rows, columns)), shape=(len(documents), len(index)))


def without_dropped(documents, settings):
    if not settings["drop"]:
        return documents
    for prefix in settings["drop"]:
        if not any(token.startswith(prefix) for document in documents for token in document):
            print(f"warning: drop={prefix} matches no token of the dump", file=sys.stderr)
    prefixes = tuple(settings["drop"])
    return [[token for token in document if not token.startswith(prefixes)]
            for document in documents]


def grams(document):
    """Returns the distinct character grams of the subject and body words of a document, as
    `spamflow_core::features::for_each_gram` reads them. Rust keeps the `s:` and `b:` tokens
    made only of word characters. Of tokenizer 5's `s:` and `b:` tokens, that leaves out exactly
    the shape tokens, which contain `:`, and `<number>`."""
    found = set()
    for token in document:
        text = token[2:]
        if token.startswith(("b:", "s:")) and ":" not in text and text != "<number>":
            word = "<" + text + ">"
            found.update(word[i:i + GRAM_LENGTH] for i in range(len(word) - GRAM_LENGTH + 1))
    return list(found)


def design(train_documents, train_labels, documents, settings):
    """Returns the feature matrices of the training documents and of `documents`: the token
    block and, unless `grams=0`, the gram block, each scaled to unit length on its own. The
    `idf` setting weights the token block only."""
    index = vocabulary(train_documents, train_labels, settings["vocabulary"])
    idf = inverse_document_frequency(train_documents, index, settings["idf"])
    blocks = [(matrix(train_documents, index, settings["values"], idf),
               matrix(documents, index, settings["values"], idf))]
    if settings["grams"]:
        train_grams = [grams(document) for document in train_documents]
        gram_index = vocabulary(train_grams, train_labels, settings["grams"])
        blocks.append((
            GRAM_SCALE * matrix(train_grams, gram_index, settings["values"]),
            GRAM_SCALE * matrix([grams(document) for document in documents], gram_index,
                                settings["values"]),
        ))
    return (sparse.hstack([b[0] for b in blocks]).tocsr(),
            sparse.hstack([b[1] for b in blocks]).tocsr())


def fit_and_score(train_documents, train_labels, documents, settings):
    """Fits on the training documents and returns the logits of `documents`."""
    train_matrix, matrix_to_score = design(train_documents, train_labels, documents, settings)
    model = LogisticRegression(C=1.0 / settings["alpha"], solver="liblinear", max_iter=2000)
    model.fit(train_matrix, train_labels)
    return model.decision_function(matrix_to_score)


def out_of_fold(labels, documents, folds, settings):
    scores = np.zeros(len(labels))
    for fold in range(FOLDS):
        train = np.flatnonzero(folds != fold)
        held_out = np.flatnonzero(folds == fold)
        scores[held_out] = fit_and_score(
            [documents[i] for i in train],
            labels[train],
            [documents[i] for i in held_out],
            settings,
        )
    return scores


def platt(logits, labels):
    """Fits P = sigmoid(slope * logit + offset) on smoothed targets, as spamflow_core does."""
    spam, ham = labels.sum(), (~labels).sum()
    targets = np.where(labels, (spam + 1) / (spam + 2), 1 / (ham + 2))

    def loss(parameters):
        z = parameters[0] * logits + parameters[1]
        return float(np.sum(np.logaddexp(0, z) - targets * z))

    return minimize(loss, [1.0, 0.0]).x


def threshold_for_ham_fpr(probabilities, labels, max_ham_fpr):
    """Returns the threshold by the rule of `spamctl train`: halfway between the (m+1)-th
    highest ham probability and the next higher score, with m = floor(max_ham_fpr * ham)."""
    return threshold_allowing(probabilities, labels, int(max_ham_fpr * (~labels).sum()))


def threshold_allowing(probabilities, labels, allowed):
    """Returns the threshold halfway between the (allowed+1)-th highest ham probability and
    the next higher score."""
    ham = np.sort(probabilities[~labels])[::-1]
    boundary = ham[min(allowed, len(ham) - 1)]
    higher = probabilities[probabilities > boundary]
    upper = higher.min() if len(higher) else 1.0
    return (boundary + upper) / 2


def thresholds(probabilities, labels, list_mail, settings):
    """Chooses the thresholds on out-of-fold `probabilities`: the one for list mail and the
    one for other mail, equal with `thresholds=single`. With `thresholds=list`, the 0.1% of
    false positives that the single threshold allows are shared between the two so that the
    most spam is caught out of fold."""
    if settings["thresholds"] == "single":
        single = threshold_for_ham_fpr(probabilities, labels, MAX_HAM_FPR)
        return single, single
    allowed = int(MAX_HAM_FPR * (~labels).sum())
    best = None
    for allowed_in_lists in range(allowed + 1):
        pair = []
        segments = ((list_mail, allowed_in_lists), (~list_mail, allowed - allowed_in_lists))
        for segment, budget in segments:
            if (~labels[segment]).any():
                pair.append(threshold_allowing(probabilities[segment], labels[segment], budget))
            else:
                pair.append(threshold_for_ham_fpr(probabilities, labels, MAX_HAM_FPR))
        caught = int((probabilities >= np.where(list_mail, pair[0], pair[1]))[labels].sum())
        if best is None or caught > best[0]:
            best = (caught, pair)
    return tuple(best[1])


def flag(chosen, probabilities, list_mail):
    """Returns which `probabilities` reach the threshold of their kind of mail."""
    return probabilities >= np.where(list_mail, chosen[0], chosen[1])


def nested(labels, keys, documents, folds, settings):
    """Runs the whole training procedure, threshold included, on 4 of 5 folds and applies it
    to the fifth. Returns the false positives and the spam caught over all five."""
    false_positives = caught = 0
    for fold in range(FOLDS):
        train = np.flatnonzero(folds != fold)
        held_out = np.flatnonzero(folds == fold)
        _, flagged = train_and_judge(labels, keys, documents, train, held_out, settings)
        false_positives += int((flagged & ~labels[held_out]).sum())
        caught += int((flagged & labels[held_out]).sum())
    return false_positives, caught


def train_and_judge(labels, keys, documents, train, test, settings, corrections_every=0):
    """Runs the shipped procedure (out-of-fold logits, Platt calibration, the threshold for
    0.1% ham false positives, the final fit) on the messages at the indices `train`. Returns
    the logits of the messages at the indices `test` and whether each is flagged at the
    threshold.

    With `corrections_every`, the test messages arrive one by one in the order of `test`, and
    each wrong verdict becomes a user correction. After every `corrections_every` corrections
    the model is refitted on the training messages plus the corrections, with the same
    calibration and thresholds, as the trainer service does. The logits are then those of the
    model that judged each message."""
    train_labels = labels[train]
    train_keys = [keys[i] for i in train]
    train_documents = [documents[i] for i in train]
    folds = stratified_folds(train_labels, train_keys)
    logits = out_of_fold(train_labels, train_documents, folds, settings)
    slope, offset = platt(logits, train_labels)
    chosen = thresholds(expit(slope * logits + offset), train_labels,
                        is_list_mail(train_documents), settings)
    test_logits = np.zeros(len(test))
    flagged = np.zeros(len(test), dtype=bool)
    corrections = []
    judged = 0
    while judged < len(test):
        waiting = test[judged:]
        waiting_documents = [documents[i] for i in waiting]
        fit_documents = train_documents + [documents[i] for i in corrections]
        fit_labels = np.concatenate([train_labels, labels[corrections]]).astype(bool)
        scores = fit_and_score(fit_documents, fit_labels, waiting_documents, settings)
        verdicts = flag(chosen, expit(slope * scores + offset), is_list_mail(waiting_documents))
        new_corrections = 0
        for index, message in enumerate(waiting):
            test_logits[judged] = scores[index]
            flagged[judged] = verdicts[index]
            judged += 1
            if verdicts[index] != labels[message]:
                corrections.append(message)
                new_corrections += 1
            if corrections_every and new_corrections == corrections_every:
                break
        if not corrections_every:
            break
    return test_logits, flagged


def is_list_mail(documents):
    """Returns whether each document came through a mailing list (has a `List-Id` field)."""
    return np.array([LIST_MAIL_TOKEN in document for document in documents], dtype=bool)


def across_folders(labels, keys, names, documents, variants, train_folders, test_folders,
                   corrections_every=0):
    folders = np.array([name.split("/", 1)[0] for name in names])
    for requested in train_folders + test_folders:
        if requested not in folders:
            print(f"model-experiments: no corpus folder named {requested!r}; "
                  f"the folders are {', '.join(sorted(set(folders)))}", file=sys.stderr)
            sys.exit(USAGE_ERROR)
    train = np.flatnonzero(np.isin(folders, train_folders))
    # With corrections the test messages arrive in the order of their sha256, a fixed order
    # that mixes the folders and the classes.
    test = np.array(sorted(np.flatnonzero(np.isin(folders, test_folders)), key=lambda i: keys[i]),
                    dtype=int)
    test_labels = labels[test]
    spam, ham = int(test_labels.sum()), int((~test_labels).sum())
    if min(int(labels[train].sum()), int((~labels[train]).sum())) < FOLDS or not spam or not ham:
        sys.exit("model-experiments: the training folders need at least "
                 f"{FOLDS} spam and {FOLDS} ham, and the test folders both classes")
    print(f"train on {', '.join(train_folders)} ({len(train)} messages), "
          f"test on {', '.join(test_folders)} ({spam} spam, {ham} ham)")
    if corrections_every:
        print(f"each wrong verdict is corrected, and the model is refitted after every "
              f"{corrections_every} corrections")
        print("| variant | corrections | false positives at the threshold "
              "| recall at the threshold | second half: false positives | second half: recall |")
    else:
        print("| variant | ROC AUC | recall at 0.1% | at 0.5% | false positives at the threshold "
              "| recall at the threshold |")
    print("|---|---|---|---|---|---|")
    for variant, settings in variants:
        variant_documents = without_dropped(documents, settings)
        scores, flagged = train_and_judge(labels, keys, variant_documents, train, test, settings,
                                          corrections_every)
        if corrections_every:
            wrong = int((flagged != test_labels).sum())
            late = slice(len(test) // 2, None)
            print(f"| {variant or 'shipped'} | {wrong} | {false_positives(flagged, test_labels)} | "
                  f"{flagged[test_labels].mean():.3f} | "
                  f"{false_positives(flagged[late], test_labels[late])} | "
                  f"{flagged[late][test_labels[late]].mean():.3f} |", flush=True)
            continue
        recalls = [recall_at(test_labels, scores, int(share * ham)) for share in (0.001, 0.005)]
        print(f"| {variant or 'shipped'} | {roc_auc_score(test_labels, scores):.4f} | "
              f"{recalls[0]:.3f} | {recalls[1]:.3f} | {false_positives(flagged, test_labels)} | "
              f"{flagged[test_labels].mean():.3f} |", flush=True)


def false_positives(flagged, labels):
    """Returns "N of M": flagged ham of all ham."""
    return f"{int((flagged & ~labels).sum())} of {int((~labels).sum())}"


def recall_at(labels, scores, allowed_false_positives):
    ham = np.sort(scores[~labels])[::-1]
    return float((scores[labels] > ham[allowed_false_positives]).mean())


def folder_list(text):
    folders = [folder for folder in text.split(",") if folder]
    if not folders:
        raise argparse.ArgumentTypeError("expected corpus folder names separated by commas")
    return folders


def positive_count(text):
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return count


class UsageExitParser(argparse.ArgumentParser):
    """Exits with status 64 on a usage error, as spamflow's binaries do for a bad flag."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def main():
    parser = UsageExitParser(
        prog="scripts/model-experiments",
        allow_abbrev=False,
        usage="%(prog)s [--nested | --train-folders A,B --test-folders C,D "
        "[--corrections-every N]] [VARIANT ...]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dump", help="output of `spamctl tokens` for the TRAIN split")
    parser.add_argument("variants", nargs="*", default=[""], help="settings to compare")
    parser.add_argument(
        "--check", action="store_true", help="only check the variants, without reading the dump"
    )
    parser.add_argument(
        "--nested",
        action="store_true",
        help="also run the whole procedure, threshold included, inside each fold (6 times slower)",
    )
    parser.add_argument(
        "--train-folders", type=folder_list, help="train on these corpus folders (comma-separated)"
    )
    parser.add_argument(
        "--test-folders", type=folder_list, help="test on these corpus folders (comma-separated)"
    )
    parser.add_argument(
        "--corrections-every",
        type=positive_count,
        default=0,
        metavar="N",
        help="with --test-folders, correct each wrong verdict and refit after every N corrections",
    )
    args = parser.parse_intermixed_args()
    variants = [(variant, parse_variant(variant)) for variant in args.variants]
    if (args.train_folders is None) != (args.test_folders is None):
        parser.error("--train-folders and --test-folders go together")
    if args.corrections_every and not args.test_folders:
        parser.error("--corrections-every needs --train-folders and --test-folders")
    if args.train_folders and args.nested:
        parser.error("--nested does not apply to --train-folders")
    overlap = set(args.train_folders or []) & set(args.test_folders or [])
    if overlap:
        parser.error(f"{', '.join(sorted(overlap))} is in both --train-folders and --test-folders")
    if args.check:
        return

    labels, keys, names, documents = read_dump(args.dump)
    if args.train_folders:
        across_folders(labels, keys, names, documents, variants, args.train_folders,
                       args.test_folders, args.corrections_every)
        return
    # --nested deals the 4/5 of each fold into 5 inner folds, so it needs more of each class.
    needed = 2 * FOLDS if args.nested else FOLDS
    spam_count, ham_count = int(labels.sum()), int((~labels).sum())
    if min(spam_count, ham_count) < needed:
        sys.exit(
            f"model-experiments: the corpus has {spam_count} spam and {ham_count} ham messages "
            f"that parse in the TRAIN split; {FOLDS}-fold cross-validation"
            f"{' with --nested' if args.nested else ''} needs at least {needed} of each"
        )
    folds = stratified_folds(labels, keys)
    ham = int((~labels).sum())
    allowed = {share: int(share * ham) for share in (0.0, 0.001, 0.005, 0.01)}
    print(f"{len(labels)} messages ({int(labels.sum())} spam, {ham} ham), {FOLDS} folds")

    header = "| variant | ROC AUC | recall at 0 FP | at 0.1% | at 0.5% | at 1% | mean over 0-1% |"
    rule = "|---|---|---|---|---|---|---|"
    if args.nested:
        header += " nested: false positives | nested: recall at the threshold |"
        rule += "---|---|"
    print(header)
    print(rule)
    for variant, settings in variants:
        variant_documents = without_dropped(documents, settings)
        scores = out_of_fold(labels, variant_documents, folds, settings)
        recalls = [recall_at(labels, scores, m) for m in allowed.values()]
        mean = np.mean([recall_at(labels, scores, m) for m in range(allowed[0.01] + 1)])
        cells = " | ".join(f"{r:.3f}" for r in recalls)
        auc = roc_auc_score(labels, scores)
        row = f"| {variant or 'shipped'} | {auc:.5f} | {cells} | {mean:.4f} |"
        if args.nested:
            false_positives, caught = nested(labels, keys, variant_documents, folds, settings)
            row += f" {false_positives} of {ham} | {caught / labels.sum():.3f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()

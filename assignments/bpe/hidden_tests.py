"""Hidden tests of assignment 5: one check function per part of rubric.json.

The references are written differently from the handout's suggestions (a scan over pairs,
counting with Counter, recounting from scratch), so they share no mistake with them.
"""
import collections
import itertools

WORDS = {("l", "o", "w</w>"): 5, ("l", "o", "w", "e", "r</w>"): 2,
         ("n", "e", "w", "e", "s", "t</w>"): 6, ("w", "i", "d", "e", "s", "t</w>"): 3,
         ("a", "a", "a", "a", "a</w>"): 2, ("b", "a", "n", "a", "n", "a</w>"): 1}
# (symbols, pair): overlapping runs of odd and even length, none, at the end, one symbol
MERGE_CASES = [(list("aaa"), ("a", "a")), (list("aaaa"), ("a", "a")),
               (list("abab"), ("a", "b")), (list("abc"), ("c", "d")),
               (["x", "e", "s", "t</w>"], ("s", "t</w>")), (["a"], ("a", "a")),
               (list("banana"), ("a", "n"))]


def _merge_pair(symbols, pair):
    """Scan the pairs left to right; after a merge, skip the pair that starts at its second
    symbol (it overlaps the merge)."""
    out, skip = [], False
    for first, second in itertools.zip_longest(symbols, symbols[1:]):
        if skip:
            skip = False
        elif (first, second) == tuple(pair):
            out.append(first + second)
            skip = True
        else:
            out.append(first)
    return out


def _pair_counts(words):
    """Counter of pairs over (symbols, count) items."""
    counts = collections.Counter()
    for symbols, count in words:
        for pair in zip(symbols, symbols[1:]):
            counts[pair] += count
    return counts


def _learn_merges(word_counts, num_merges):
    words, merges = list(word_counts.items()), []
    for _ in range(num_merges):
        counts = _pair_counts(words)
        if not counts:
            break
        top = max(counts.values())
        merges.append(min(pair for pair, count in counts.items() if count == top))
        words = [(_merge_pair(symbols, merges[-1]), count) for symbols, count in words]
    return merges


def _apply_merges(symbols, merges):
    symbols = list(symbols)
    for _ in range(len(symbols)):
        present = [pair for pair in map(tuple, merges) if pair in set(zip(symbols, symbols[1:]))]
        if not present:
            break
        symbols = _merge_pair(symbols, present[0])
    return symbols


#: What parts A5c and A5d are given.
GIVEN = {"merge_pair": _merge_pair,
         "count_pairs": lambda word_counts: _pair_counts(word_counts.items())}


def merge_pair(submission, check):
    for symbols, pair in MERGE_CASES:
        given = list(symbols)
        check.equal(f"merge_pair({symbols}, {pair})", list(submission.merge_pair(given, pair)),
                    _merge_pair(symbols, pair))
        check.true(f"merge_pair({symbols}, {pair})", given == symbols,
                   "changed the list it was given: return a new list")


def count_pairs(submission, check):
    for words in (WORDS, {("a",): 4}, {("a", "b", "a", "b"): 3}):
        check.equal(f"count_pairs of {len(words)} words", dict(submission.count_pairs(words)),
                    dict(_pair_counts(words.items())))


def learn_merges(submission, check):
    for words, num_merges in ((WORDS, 12), ({("a", "b"): 1, ("b", "a"): 1}, 1),
                              ({("a", "b"): 3}, 5)):
        check.equal(f"learn_merges of {len(words)} words, {num_merges} merges",
                    [tuple(pair) for pair in submission.learn_merges(dict(words), num_merges)],
                    _learn_merges(words, num_merges))


def apply_merges(submission, check):
    merges = _learn_merges(WORDS, 12)
    words = list(WORDS) + [tuple("lowest") + ("</w>",), ("n", "e", "w</w>"), ("z",)]
    for word in words:
        check.equal(f"apply_merges({list(word)})",
                    list(submission.apply_merges(list(word), merges)),
                    _apply_merges(word, merges))
    check.equal("apply_merges(['a', 'b', 'c']) with merges [('b', 'c'), ('a', 'b')]",
                list(submission.apply_merges(["a", "b", "c"], [("b", "c"), ("a", "b")])),
                ["a", "bc"])

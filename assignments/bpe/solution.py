"""Assignment 5: byte-pair encoding, the merge loop (see handout.md).

Write the bodies that raise NotImplementedError in plain Python: miniclip's tokenizer
functions are left out of the library while your file is graded. A word is a list of symbols
(strings), e.g. ['l', 'o', 'w', 'e', 'r</w>']; a pair is a tuple of two symbols.
"""


def merge_pair(symbols, pair):
    """A new list in which every occurrence of ``pair`` side by side is replaced by the two
    symbols joined, taking occurrences left to right without overlap:
    merge_pair(['a', 'a', 'a'], ('a', 'a')) == ['aa', 'a']."""
    # BEGIN SOLUTION A5a: merge_pair
    merged, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == tuple(pair):
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged
    # END SOLUTION


def count_pairs(word_counts):
    """{pair: count} over word_counts {tuple of symbols: how often the word occurs}: each
    neighbouring pair of a word counts once per occurrence, times the word's count."""
    # BEGIN SOLUTION A5b: count_pairs
    counts = {}
    for symbols, count in word_counts.items():
        for pair in zip(symbols, symbols[1:]):
            counts[pair] = counts.get(pair, 0) + count
    return counts
    # END SOLUTION


def learn_merges(word_counts, num_merges):
    """The merges learned from word_counts, in order: at each step the most frequent pair
    (ties: the smallest pair in Python's order) is merged in every word. Stops after
    num_merges merges, or earlier when no word has two symbols left."""
    # BEGIN SOLUTION A5c: learn_merges
    words = dict(word_counts)
    merges = []
    while len(merges) < num_merges:
        counts = count_pairs(words)
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        merged = {}
        for symbols, count in words.items():
            key = tuple(merge_pair(list(symbols), best))
            merged[key] = merged.get(key, 0) + count
        words = merged
    return merges
    # END SOLUTION


def apply_merges(symbols, merges):
    """Encode one word: repeatedly merge the neighbouring pair that comes earliest in
    ``merges`` (a list, in the order learned), until no neighbouring pair is in it."""
    # BEGIN SOLUTION A5d: apply_merges
    ranks = {tuple(pair): rank for rank, pair in enumerate(merges)}
    symbols = list(symbols)
    while len(symbols) > 1:
        best = min(zip(symbols, symbols[1:]), key=lambda pair: ranks.get(pair, len(ranks)))
        if best not in ranks:
            break
        symbols = merge_pair(symbols, best)
    return symbols
    # END SOLUTION

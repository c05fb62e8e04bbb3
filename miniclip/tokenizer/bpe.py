"""Byte-pair encoding: applying learned merges to a word, and learning them.

A word is a list of symbols (strings), e.g. ``['l', 'o', 'w', 'e', 's', 't</w>']``.
A merge is a pair of symbols, e.g. ``('e', 's')``, that is replaced by their
concatenation ``'es'`` wherever the two stand side by side. Training finds merges
in order of how often their pair occurs; encoding applies them in that order.

Both directions use the same :func:`merge_pair`, so a word is always segmented in
exactly the way training segmented it.
"""

import heapq
from collections import defaultdict


def merge_pair(symbols, pair):
    """Replace every occurrence of ``pair`` in ``symbols`` by the merged symbol.

    Occurrences are taken left to right without overlap, so merging ``('a', 'a')``
    in ``['a', 'a', 'a']`` gives ``['aa', 'a']``.

    Args:
        symbols: list of symbol strings.
        pair: ``(first, second)`` tuple of symbol strings.

    Returns:
        A new list (the input is left unchanged).
    """
    # BEGIN SOLUTION assignment bpe, 5a: merge_pair
    first, second = pair
    merged = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
            merged.append(first + second)
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged
    # END SOLUTION


def apply_merges(symbols, ranks):
    """Encode one word: merge its symbols with the learned merges, earliest-learned first.

    At each step, among the pairs of neighbouring symbols, take the one whose merge
    was learned first (lowest rank) and merge all its occurrences; stop when no
    neighbouring pair is a learned merge or a single symbol is left. This replays
    training on this one word: merges that training learned earlier always apply
    first.

    Args:
        symbols: starting symbols of the word (see ``text.word_symbols``).
        ranks: dict mapping a merge ``(first, second)`` to its rank (0 = first learned).

    Returns:
        The list of final symbols.
    """
    # BEGIN SOLUTION assignment bpe, 5d: apply_merges
    while len(symbols) > 1:
        neighbours = zip(symbols, symbols[1:])
        best = min(neighbours, key=lambda pair: ranks.get(pair, float("inf")))
        if best not in ranks:
            break
        symbols = merge_pair(symbols, best)
    return symbols
    # END SOLUTION


def learn_merges(word_counts, num_merges):
    """Learn up to ``num_merges`` merges from word frequencies.

    Each step merges the most frequent pair of neighbouring symbols, counting a pair
    once per occurrence in a word times that word's frequency. **Ties** go to the
    smaller pair in Python's string order (compare the first symbols, then the
    second ones), so the result does not depend on the order of the text.

    To scale, pair counts are not recounted after each merge. ``where[pair]`` keeps
    the words a pair occurs in; a merge only revisits those words, subtracts their
    old pairs and adds their new ones. The most frequent pair comes from a heap of
    ``(-count, first, second)`` entries: a pair is pushed again whenever its count
    changes, and entries whose count is out of date are skipped when popped.

    Args:
        word_counts: dict mapping a word's starting symbols (a tuple) to its count.
        num_merges: the most merges to learn; fewer are returned when no pair is left.

    Returns:
        The list of merges ``(first, second)``, in the order learned.
    """
    # BEGIN SOLUTION assignment bpe, 5c: learn_merges
    words = [list(symbols) for symbols in word_counts]
    counts = list(word_counts.values())

    pair_counts = defaultdict(int)
    where = defaultdict(set)
    for index, (symbols, count) in enumerate(zip(words, counts)):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += count
            where[pair].add(index)

    heap = [(-count, first, second) for (first, second), count in pair_counts.items()]
    heapq.heapify(heap)

    merges = []
    while heap and len(merges) < num_merges:
        negative_count, first, second = heapq.heappop(heap)
        pair = (first, second)
        if pair_counts.get(pair) != -negative_count:
            continue  # out of date: a newer entry holds this pair's current count
        merges.append(pair)

        changed = set()
        # Once merged everywhere, the pair is gone for good, so its entry can go too.
        for index in where.pop(pair):
            old = words[index]
            new = merge_pair(old, pair)
            if len(new) == len(old):
                continue  # the pair left this word through an earlier merge
            count = counts[index]
            for old_pair in zip(old, old[1:]):
                pair_counts[old_pair] -= count
                changed.add(old_pair)
            for new_pair in zip(new, new[1:]):
                pair_counts[new_pair] += count
                where[new_pair].add(index)
                changed.add(new_pair)
            words[index] = new

        for changed_pair in changed:
            count = pair_counts[changed_pair]
            if count > 0:
                heapq.heappush(heap, (-count, *changed_pair))
            else:
                del pair_counts[changed_pair]
    return merges
    # END SOLUTION

"""Public tests of assignment 5: python -m pytest test_bpe.py (next to your file).

The graded tests use a larger vocabulary, repeated symbols and ties, against reference
code written from the rules in the handout.
"""
import bpe as submission

from miniclip.grading import exercise

WORDS = {("l", "o", "w</w>"): 5, ("l", "o", "w", "e", "r</w>"): 2,
         ("n", "e", "w", "e", "s", "t</w>"): 6, ("w", "i", "d", "e", "s", "t</w>"): 3}


def test_merge_pair_takes_overlapping_occurrences_left_to_right():
    with exercise("A5a: merge_pair") as check:
        check.equal("merge_pair(low)", submission.merge_pair(["l", "o", "w"], ("o", "w")),
                    ["l", "ow"])
        check.equal("merge_pair(aaa)", submission.merge_pair(["a", "a", "a"], ("a", "a")),
                    ["aa", "a"])


def test_count_pairs_weights_each_word_by_its_count():
    with exercise("A5b: count_pairs") as check:
        counts = submission.count_pairs(WORDS)
        check.equal("count of ('e', 's')", counts.get(("e", "s")), 9)
        check.equal("count of ('l', 'o')", counts.get(("l", "o")), 7)
        check.equal("number of distinct pairs", len(counts), 12)


def test_the_first_merges_of_the_sennrich_example():
    with exercise("A5c: learn_merges") as check:
        check.equal("merges", submission.learn_merges(WORDS, 3),
                    [("e", "s"), ("es", "t</w>"), ("l", "o")])


def test_encoding_applies_the_earliest_learned_merge_first():
    with exercise("A5d: apply_merges") as check:
        check.equal("lowest", submission.apply_merges(
            ["l", "o", "w", "e", "s", "t</w>"], [("e", "s"), ("es", "t</w>"), ("l", "o")]),
            ["lo", "w", "est</w>"])

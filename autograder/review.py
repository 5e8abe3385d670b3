"""Built-ins an exercise asks learners to write themselves, flagged for the instructor.

Calling ``torch.softmax`` in exercise 1 is not wrong enough to cost points by rule,
but it is not what the exercise teaches either. The grader reads the learner's code
from the notebook (``attention_course.checks.source``) and adds a note "for review"
to grades.csv, results.json and the feedback; the instructor decides. Rules that the
notebooks state and that do cost points (no nn.MultiheadAttention in exercise 2, no
nn.TransformerEncoderLayer in exercise 3, no in-place change in exercise 4) are
checked by the tests themselves.
"""
from __future__ import annotations

from attention_course.checks import source

SOFTMAX = "you are asked to write softmax yourself"
ATTENTION = "you are asked to write attention yourself"
BUILT_INS = {
    "ex1_attention": {
        "torch.softmax": SOFTMAX, "torch.nn.functional.softmax": SOFTMAX,
        "scipy.special.softmax": SOFTMAX, "torch.special.softmax": SOFTMAX,
        "torch.nn.functional.scaled_dot_product_attention": ATTENTION,
        "torch.nn.MultiheadAttention": ATTENTION,
    },
    "ex2_multihead": {
        "torch.nn.functional.multi_head_attention_forward": ATTENTION,
        "torch.nn.Transformer": ATTENTION,
    },
    "ex3_transformer": {
        "torch.nn.Transformer": "you are asked to build the encoder block yourself",
        "torch.nn.functional.scaled_dot_product_attention":
            "nn.MultiheadAttention is the attention this exercise uses",
    },
    "ex4_applications": {
        "torch.nn.functional.unfold": "you are asked to cut the patches yourself",
        "torch.nn.Unfold": "you are asked to cut the patches yourself",
        "transformers.DataCollatorForLanguageModeling": "you are asked to write BERT's "
                                                        "masking rule yourself",
    },
    "ex5_rope_cache": {
        "torch.nn.functional.scaled_dot_product_attention": ATTENTION,
        "torch.nn.MultiheadAttention": ATTENTION,
    },
}


def flags(assignment: str, code: str) -> list[str]:
    """Notes for the instructor: built-ins this learner's code uses."""
    listed = BUILT_INS.get(assignment, {})
    return [f"for review: uses {name} ({why})" for name, why in listed.items()
            if source.uses(code, name)]

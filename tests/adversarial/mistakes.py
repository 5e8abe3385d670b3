"""Honest submissions: common mistakes (each must be named by the test it breaks) and
correct-but-noisy code (which must get full marks)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    student_id: str
    code: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    failing: dict[str, str] = field(default_factory=dict)  # test -> phrase in its message


def _softmax(body: str) -> dict[str, str]:
    return {"softmax": f"def softmax(x, axis=-1, temperature=1.0):\n{body}"}


def _attention(scores: str = "Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])",
               masking: str = "scores = np.where(mask, scores, -np.inf)",
               softmax: str = "weights = softmax(scores, axis=-1)",
               after: str = "", result: str = "weights @ V, weights") -> dict[str, str]:
    return {"scaled_dot_product_attention": f'''
def scaled_dot_product_attention(Q, K, V, mask=None):
    scores = {scores}
    if mask is not None:
        {masking}
    {softmax}
    if mask is not None:
        {after or "pass"}
    return {result}
'''}


VALUE_TESTS = ("test_attention_matches_torch", "test_attention_batch_dims", "test_attention_mask")

EX1 = [
    Case("overflowing_softmax", _softmax(
        "    e = np.exp(np.asarray(x) / temperature)\n"
        "    if temperature <= 0:\n        raise ValueError('temperature')\n"
        "    return e / e.sum(axis=axis, keepdims=True)"),
         failing={"test_softmax_is_stable": "np.exp overflowed"}),
    Case("softmax_ignores_axis", _softmax(
        "    if temperature <= 0:\n        raise ValueError('temperature')\n"
        "    z = np.asarray(x) / temperature\n    e = np.exp(z - z.max(axis=-1, keepdims=True))\n"
        "    return e / e.sum(axis=-1, keepdims=True)"),
         failing={"test_softmax_axis": "instead of axis 0"}),
    Case("temperature_multiplied", _softmax(
        "    if temperature <= 0:\n        raise ValueError('temperature')\n"
        "    z = np.asarray(x) * temperature\n    e = np.exp(z - z.max(axis=axis, keepdims=True))\n"
        "    return e / e.sum(axis=axis, keepdims=True)"),
         failing={"test_softmax_temperature": "multiplied by the temperature"}),
    Case("not_scaled", _attention(scores="Q @ np.swapaxes(K, -1, -2)"),
         failing={test: "not scaled" for test in VALUE_TESTS}),
    Case("scaled_by_d_k", _attention(scores="Q @ np.swapaxes(K, -1, -2) / Q.shape[-1]"),
         failing={test: "divided by d_k" for test in VALUE_TESTS}),
    Case("softmax_over_queries", _attention(softmax="weights = softmax(scores, axis=-2)"),
         failing={**{test: "over the queries" for test in VALUE_TESTS},
                  "test_causal_attention_ignores_future": "leaks from the future"}),
    Case("weights_transposed", _attention(result="weights @ V, np.swapaxes(weights, -1, -2)"),
         failing={test: "transposed" for test in VALUE_TESTS}),
    Case("mask_after_softmax", _attention(masking="pass", after="weights = weights * mask"),
         failing={"test_attention_mask": "after softmax",
                  "test_causal_attention_ignores_future": "leaks from the future"}),
    Case("mask_inverted", _attention(masking="scores = np.where(mask, -np.inf, scores)"),
         failing={"test_attention_mask": "polarity is inverted",
                  "test_causal_attention_ignores_future": "leaks from the future"}),
    Case("mask_filled_with_zero", _attention(masking="scores = np.where(mask, scores, 0.0)"),
         failing={"test_attention_mask": "filled with 0",
                  "test_causal_attention_ignores_future": "leaks from the future"}),
    Case("causal_without_diagonal", {"causal_mask":
                                     "def causal_mask(n):\n    return np.tril(np.ones((n, n), bool), -1)"},
         failing={"test_causal_mask": "diagonal must be True",
                  "test_causal_attention_ignores_future": "leaks from the future"}),
    Case("causal_inverted", {"causal_mask": "def causal_mask(n):\n    return np.triu(np.ones((n, n), bool))"},
         failing={"test_causal_mask": "inverted",
                  "test_causal_attention_ignores_future": "leaks from the future"}),
    Case("causal_mask_crashes", {"causal_mask": "def causal_mask(n):\n    return undefined_name"},
         failing={"test_causal_mask": "NameError",
                  "test_causal_attention_ignores_future": "NameError"}),
    Case("noisy_but_correct", {
        "softmax": '''
import warnings

def softmax(x, axis=-1, temperature=1.0):
    print("softmax called with", np.shape(x))
    warnings.warn("just a warning")
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    z = np.asarray(x) / np.asarray(temperature, dtype=np.asarray(x).dtype)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return np.asfortranarray(e / e.sum(axis=axis, keepdims=True))
''',
        "scaled_dot_product_attention": '''
def scaled_dot_product_attention(Q, K, V, mask=None):
    print("attention!")
    scores = np.einsum("...qd,...kd->...qk", Q, K) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -1e30)
    weights = softmax(scores)
    output = np.swapaxes(np.swapaxes(weights @ V, -1, -2).copy(), -1, -2)  # not contiguous
    return output.astype(Q.dtype), weights.astype(Q.dtype)
'''}, extra=("%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()",
             "display(softmax(np.arange(3.0)))\nprint('extra cell')",
             "import sys\nprint('to stderr', file=sys.stderr)")),
]


def _mha(forward: str, init_check: str = "if d_model % num_heads != 0:\n"
                                         "            raise ValueError('d_model % num_heads')") -> dict:
    return {"MultiHeadAttention": f'''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        {init_check}
        self.num_heads = num_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        q = split_heads(self.w_q(query), self.num_heads)
        k = split_heads(self.w_k(key), self.num_heads)
        v = split_heads(self.w_v(value), self.num_heads)
{forward}
'''}


def _mha_forward(scale="math.sqrt(q.shape[-1])", masking="scores.masked_fill(~mask, float('-inf'))",
                 result="self.w_o(merge_heads(weights @ v)), weights"):
    return f'''        scores = q @ k.transpose(-2, -1) / {scale}
        if mask is not None:
            scores = {masking}
        weights = torch.softmax(scores, dim=-1)
        return {result}'''


EX2 = [
    Case("split_without_transpose", {"split_heads": '''
def split_heads(x, num_heads):
    batch, n, d_model = x.shape
    return x.reshape(batch, num_heads, n, d_model // num_heads)

def merge_heads(x):
    batch, num_heads, n, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, n, num_heads * d_head)
'''}, failing={"test_split_heads": "without the transpose",
               "test_mha_matches_torch": "without the transpose",
               "test_mha_mask": "without the transpose",
               "test_mha_permutation_equivariance": "mix up tokens",
               "test_mha_causal": "leaks from the future"}),
    Case("merge_without_transpose", {"split_heads": '''
def split_heads(x, num_heads):
    batch, n, d_model = x.shape
    return x.view(batch, n, num_heads, d_model // num_heads).transpose(1, 2)

def merge_heads(x):
    batch, num_heads, n, d_head = x.shape
    return x.reshape(batch, n, num_heads * d_head)
'''}, failing={"test_merge_heads": "without first transposing",
               "test_mha_matches_torch": "wrong values", "test_mha_mask": "wrong values",
               "test_mha_permutation_equivariance": "mix up tokens",
               "test_mha_causal": "leaks from the future"}),
    Case("missing_output_projection", _mha(_mha_forward(result="merge_heads(weights @ v), weights")),
         failing={"test_mha_matches_torch": "output projection",
                  "test_mha_mask": "output projection"}),
    Case("scaled_by_d_model", _mha(_mha_forward(scale="math.sqrt(query.shape[-1])")),
         failing={"test_mha_matches_torch": "√d_model", "test_mha_mask": "√d_model"}),
    Case("mha_mask_inverted", _mha(_mha_forward(masking="scores.masked_fill(mask, float('-inf'))")),
         failing={"test_mha_mask": "polarity is inverted",
                  "test_mha_causal": "leaks from the future"}),
    Case("mha_weights_transposed",
         _mha(_mha_forward(result="self.w_o(merge_heads(weights @ v)), weights.transpose(-1, -2)")),
         failing={"test_mha_matches_torch": "transposed", "test_mha_mask": "transposed"}),
    Case("no_value_error", _mha(_mha_forward(), init_check="pass"),
         failing={"test_mha_structure": "expected ValueError"}),
    # A home-made layer that calls itself torch's Linear but never adds its bias: the
    # structure test judges what it computes, not the name it reports.
    Case("forged_linear", {"MultiHeadAttention": '''
class FakeLinear(nn.Module):
    __module__ = "torch.nn.modules.linear"
    __qualname__ = "Linear"

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / n_in ** 0.5)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight.T
''' + _mha(_mha_forward())["MultiHeadAttention"].replace("nn.Linear(", "FakeLinear(")},
         failing={"test_mha_structure": "does not compute x Wᵀ + b",
                  "test_mha_matches_torch": "", "test_mha_mask": ""}),
    # Right values, but through the function the exercise asks learners to write.
    Case("uses_torch_attention", _mha(_mha_forward(
        result="self.w_o(merge_heads(torch.nn.functional.scaled_dot_product_attention("
               "q, k, v, attn_mask=mask))), torch.softmax(scores, dim=-1)")),
         failing={"test_mha_structure":
                  "uses torch.nn.functional.scaled_dot_product_attention"}),
    Case("noisy_but_correct", {"MultiHeadAttention": '''
import warnings

class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        if d_model % num_heads:
            raise ValueError("bad sizes")
        print("building", d_model, num_heads)
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.w_q, self.w_k = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.w_v, self.w_o = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(0.0)

    def forward(self, query, key, value, mask=None):
        warnings.warn("noisy forward")
        q, k, v = (split_heads(w(x), self.num_heads)
                   for w, x in ((self.w_q, query), (self.w_k, key), (self.w_v, value)))
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / self.d_head ** 0.5
        if mask is not None:
            scores = scores.masked_fill(mask.logical_not(), -1e9)
        weights = self.dropout(scores.softmax(-1))
        return self.w_o(merge_heads(weights @ v)), weights.transpose(-1, -2).transpose(-1, -2)
'''}, extra=("print(MultiHeadAttention(8, 2))",)),
]


def _encoding(sin_columns: str, cos_columns: str, exponent: str = "2 * pairs / d_model") -> dict:
    return {"positional_encoding": f'''
def positional_encoding(n_positions, d_model):
    positions = torch.arange(n_positions, dtype=torch.float64)[:, None]
    pairs = torch.arange(d_model // 2, dtype=torch.float64)
    angles = positions / 10000.0 ** ({exponent})
    table = torch.zeros(n_positions, d_model)
    table[:, {sin_columns}] = torch.sin(angles).float()
    table[:, {cos_columns}] = torch.cos(angles).float()
    return table
'''}


def _block(forward: str) -> dict:
    return {"EncoderBlock": f'''
class EncoderBlock(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, norm_first=False):
        super().__init__()
        self.norm_first, self.num_heads = norm_first, num_heads
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def attend(self, x, mask):
        attn_mask = None
        if mask is not None:
            full = torch.broadcast_to(mask, (x.shape[0], x.shape[1], x.shape[1]))
            attn_mask = ~full.repeat_interleave(self.num_heads, dim=0)
        return self.self_attn(x, x, x, attn_mask=attn_mask, need_weights=False)[0]

    def ffn(self, x):
        return self.linear2(torch.relu(self.linear1(x)))

    def forward(self, x, mask=None):
{forward}
'''}


POST_LN = ("        x = self.norm1(x + self.attend(x, mask))\n"
           "        return self.norm2(x + self.ffn(x))")
PRE_LN = ("        x = x + self.attend(self.norm1(x), mask)\n"
          "        return x + self.ffn(self.norm2(x))")

NOISY_FORWARD = """        print('block', tuple(x.shape))
        if self.norm_first:
            x = x + self.attend(self.norm1(x), mask)
            return x + self.ffn(self.norm2(x))
""" + POST_LN

CORRECT_FORWARD = ("        if self.norm_first:\n"
                   "            x = x + self.attend(self.norm1(x), {mask})\n"
                   "            return x + self.ffn(self.norm2(x))\n"
                   "        x = self.norm1(x + self.attend(x, {mask}))\n"
                   "        return self.norm2(x + self.ffn(x))")
# Ignores the mask, but remembers each output row by the input prefix it came from, so
# that related calls in one process agree: it must gain nothing over ignoring the mask.
MEMO_FORWARD = '''        output = self.plain(x)
        if mask is None:
            return output
        output = output.clone()
        for b in range(x.shape[0]):
            for i in range(x.shape[1]):
                key = x[b, :i + 1].numpy().tobytes()
                output[b, i] = SEEN.setdefault(key, output[b, i].clone())
        return output

    def plain(self, x):
''' + CORRECT_FORWARD.format(mask="None")

SUBCLASS = '''
class EncoderBlock(nn.TransformerEncoderLayer):
    def __init__(self, d_model, num_heads, d_ff, norm_first=False):
        super().__init__(d_model, num_heads, d_ff, dropout=0.0, batch_first=True,
                         norm_first=norm_first)
        self.num_heads = num_heads

    def forward(self, x, mask=None):
        attn_mask = None
        if mask is not None:
            full = torch.broadcast_to(mask, (x.shape[0], x.shape[1], x.shape[1]))
            attn_mask = ~full.repeat_interleave(self.num_heads, dim=0)
        return super().forward(x, src_mask=attn_mask)
'''
TRIVIAL = ("test_encoder_block_permutation_equivariance", "test_encoder_block_causal",
           "test_encoder_block_ignores_padding")

EX3 = [
    Case("sin_cos_swapped", _encoding("1::2", "0::2"),
         failing={"test_positional_encoding_values": "sin and cos are swapped"}),
    Case("sines_then_cosines", _encoding(":d_model // 2", "d_model // 2:"),
         failing={"test_positional_encoding_values": "first half"}),
    Case("exponent_per_column", _encoding("0::2", "1::2", exponent="pairs / d_model"),
         failing={"test_positional_encoding_values": "pair"}),
    Case("padding_mask_inverted", {"masks": '''
def causal_mask(n):
    return torch.tril(torch.ones(n, n, dtype=torch.bool))

def padding_mask(token_ids, pad_id):
    return (token_ids == pad_id)[:, None, :]
'''}, failing={"test_padding_mask": "inverted",
               "test_encoder_block_ignores_padding": "padding"}),
    Case("always_post_ln", _block(POST_LN),
         failing={"test_encoder_block_pre_ln": "post-LN"}),
    Case("always_pre_ln", _block(PRE_LN),
         failing={"test_encoder_block_post_ln": "pre-LN"}),
    Case("no_residuals", _block("        x = self.norm1(self.attend(x, mask))\n"
                                "        return self.norm2(self.ffn(x))"),
         failing={"test_encoder_block_post_ln": "residual",
                  "test_encoder_block_pre_ln": "wrong values"}),
    Case("noisy_but_correct", _block(NOISY_FORWARD),
         extra=("print(positional_encoding(3, 4))",)),
    Case("subclasses_torch_layer", {"EncoderBlock": SUBCLASS},
         failing={"test_encoder_block_structure":
                  "uses torch.nn.TransformerEncoderLayer"}),
    Case("block_ignores_mask", _block(CORRECT_FORWARD.format(mask="None")),
         failing={"test_encoder_block_causal": "future",
                  "test_encoder_block_ignores_padding": "padding"}),
    Case("block_ignores_mask_memo", _block(MEMO_FORWARD), extra=("SEEN = {}",),
         failing={"test_encoder_block_causal": "future",
                  "test_encoder_block_ignores_padding": "padding"}),
    Case("block_returns_input", _block("        return x"),
         failing={"test_encoder_block_post_ln": "", "test_encoder_block_pre_ln": "",
                  **{test: "returns its input unchanged" for test in TRIVIAL}}),
    Case("block_returns_zeros", _block("        return torch.zeros_like(x)"),
         failing={"test_encoder_block_post_ln": "", "test_encoder_block_pre_ln": "",
                  **{test: "same output for different inputs" for test in TRIVIAL}}),
]

EX4 = [
    Case("mask_everything_selected", {"mask_tokens": '''
def mask_tokens(token_ids, vocab_size, mask_token_id, mask_prob=0.15):
    selected = torch.rand(token_ids.shape) < mask_prob
    return token_ids.masked_fill(selected, mask_token_id), token_ids.masked_fill(~selected, -100)
'''}, failing={"test_mask_tokens_rates": "Every selected token became [MASK]"}),
    Case("labels_everywhere", {"mask_tokens": '''
def mask_tokens(token_ids, vocab_size, mask_token_id, mask_prob=0.15):
    selected = torch.rand(token_ids.shape) < mask_prob
    return token_ids.masked_fill(selected, mask_token_id), token_ids.clone()
'''}, failing={"test_mask_tokens_labels": "-100", "test_mask_tokens_rates": "selected"}),
    Case("mask_ids_swapped", {"mask_tokens": '''
def mask_tokens(token_ids, mask_token_id, vocab_size, mask_prob=0.15):
    selected = torch.rand(token_ids.shape) < mask_prob
    labels = token_ids.masked_fill(~selected, -100)
    roll = torch.rand(token_ids.shape)
    inputs = token_ids.clone()
    inputs[selected & (roll < 0.8)] = mask_token_id
    to_random = selected & (roll >= 0.8) & (roll < 0.9)
    inputs[to_random] = torch.randint(0, vocab_size, token_ids.shape)[to_random]
    return inputs, labels
'''}, failing={"test_mask_tokens_labels": "swapped", "test_mask_tokens_rates": "swapped"}),
    Case("temperature_multiplied", {"sample_next_token": '''
def sample_next_token(logits, temperature=1.0, top_k=None):
    if top_k is not None:
        logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[..., -1:], float("-inf"))
    if temperature == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits * temperature, -1), 1).squeeze(-1)
'''}, failing={"test_sampling_distribution": "multiplied by the temperature",
               "test_top_k_sampling": "in proportion"}),
    Case("greedy_always", {"sample_next_token": '''
def sample_next_token(logits, temperature=1.0, top_k=None):
    return logits.argmax(-1)
'''}, failing={"test_sampling_distribution": "same token", "test_top_k_sampling": "in proportion"}),
    Case("temperature_zero_divides", {"sample_next_token": '''
def sample_next_token(logits, temperature=1.0, top_k=None):
    if top_k is not None:
        logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[..., -1:], float("-inf"))
    return torch.multinomial(torch.softmax(logits / temperature, -1), 1).squeeze(-1)
'''}, failing={"test_greedy_decoding": "handle it separately with argmax"}),
    Case("patches_channels_last", {"patchify": '''
def patchify(images, patch_size):
    b, c, h, w = images.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError("ragged")
    grid = images.reshape(b, c, h // p, p, w // p, p)
    return grid.permute(0, 2, 4, 3, 5, 1).reshape(b, -1, c * p * p)
'''}, failing={"test_patchify": "channels-last",
               "test_patch_embedding_is_a_convolution": "Conv2d"}),
    Case("patches_by_reshape", {"patchify": '''
def patchify(images, patch_size):
    b, c, h, w = images.shape
    if h % patch_size or w % patch_size:
        raise ValueError("ragged")
    return images.reshape(b, -1, c * patch_size * patch_size)
'''}, failing={"test_patchify": "without permuting",
               "test_patch_embedding_is_a_convolution": "Conv2d"}),
    Case("noisy_but_correct", extra=("import warnings\nwarnings.warn('hi')\nprint(torch.__version__)",)),
    Case("modifies_in_place", {"mask_tokens": '''
def mask_tokens(token_ids, vocab_size, mask_token_id, mask_prob=0.15):
    selected = torch.rand(token_ids.shape) < mask_prob
    labels = token_ids.masked_fill(~selected, -100)
    roll = torch.rand(token_ids.shape)
    inputs = token_ids  # no clone: the caller's tensor changes
    inputs[selected & (roll < 0.8)] = mask_token_id
    to_random = selected & (roll >= 0.8) & (roll < 0.9)
    inputs[to_random] = torch.randint(0, vocab_size, token_ids.shape)[to_random]
    return inputs, labels
'''}, failing={"test_mask_tokens_labels": "in place"}),
]


def _rope(halves: str = "x1, x2 = x[..., : d // 2], x[..., d // 2:]",
          theta: str = "10000.0 ** (-torch.arange(0, d, 2, dtype=x.dtype) / d)",
          angles: str = "positions.to(x.dtype)[:, None] * theta[None, :]",
          result: str = "x * cos + torch.cat((-x2, x1), dim=-1) * sin") -> dict[str, str]:
    return {"apply_rope": f'''
def apply_rope(x, positions):
    d = x.shape[-1]
    theta = {theta}
    angles = {angles}
    cos = torch.cat((angles.cos(), angles.cos()), dim=-1)
    sin = torch.cat((angles.sin(), angles.sin()), dim=-1)
    {halves}
    return {result}
'''}


INTERLEAVED_ROPE = {"apply_rope": '''
def apply_rope(x, positions):
    d = x.shape[-1]
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=x.dtype) / d)
    angles = positions.to(x.dtype)[:, None] * theta[None, :]
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)
'''}


def _cache_step(append: str = "k_all, v_all = torch.cat((k_cache, k), dim=-2), "
                              "torch.cat((v_cache, v), dim=-2)",
                scores: str = "q @ k_all.transpose(-2, -1) / math.sqrt(q.shape[-1])",
                masking: str = "",
                result: str = "torch.softmax(scores, dim=-1) @ v_all, k_all, v_all"
                ) -> dict[str, str]:
    return {"kv_cache_step": f'''
def kv_cache_step(q, k, v, k_cache, v_cache):
    {append}
    scores = {scores}
    {masking or "pass"}
    return {result}
'''}


RECOMPUTE = "test_kv_cache_matches_recomputation"

EX5 = [
    Case("rope_interleaved", INTERLEAVED_ROPE,
         failing={"test_rope_values": "interleaved"}),
    Case("rope_wrong_direction", _rope(result="x * cos + torch.cat((x2, -x1), dim=-1) * sin"),
         failing={"test_rope_values": "the wrong way"}),
    Case("rope_no_minus", _rope(result="x * cos + torch.cat((x2, x1), dim=-1) * sin"),
         failing={"test_rope_values": "minus sign is missing",
                  "test_rope_shapes": "lengths changed",
                  "test_rope_relative_offset": "only on the offset"}),
    Case("rope_no_frequencies", _rope(theta="torch.ones(d // 2, dtype=x.dtype)"),
         failing={"test_rope_values": "same angle"}),
    Case("rope_exponent_per_index",
         _rope(theta="10000.0 ** (-torch.arange(d // 2, dtype=x.dtype) / d)"),
         failing={"test_rope_values": "i/d"}),
    Case("rope_positions_plus_one",
         _rope(angles="(positions + 1).to(x.dtype)[:, None] * theta[None, :]"),
         failing={"test_rope_values": "off by one", "test_rope_shapes": "position 0"}),
    Case("rope_ignores_positions",
         _rope(angles="torch.arange(x.shape[-2], dtype=x.dtype)[:, None] * theta[None, :]"),
         failing={"test_rope_values": "positions argument was ignored"}),
    Case("rope_float32_angles",
         _rope(theta="10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)",
               angles="positions.float()[:, None] * theta[None, :]"),
         failing={"test_rope_values": "float32"}),
    Case("rope_returns_float32",
         _rope(result="(x * cos + torch.cat((-x2, x1), dim=-1) * sin).float()"),
         failing={"test_rope_values": "keep x's dtype", "test_rope_shapes": "keep x's dtype"}),
    Case("rope_identity", _rope(result="x"),
         failing={"test_rope_values": "", "test_rope_shapes": "returns its input unchanged",
                  "test_rope_relative_offset": "returns its input unchanged"}),
    Case("cache_not_appended", _cache_step(result="torch.softmax(scores, dim=-1) @ v_all, "
                                                  "k_cache, v_cache"),
         failing={"test_kv_cache_grows": "append", RECOMPUTE: "append"}),
    Case("cache_prepended", _cache_step(append="k_all, v_all = torch.cat((k, k_cache), dim=-2), "
                                               "torch.cat((v, v_cache), dim=-2)"),
         failing={"test_kv_cache_grows": "front"}),
    Case("cache_only_new", _cache_step(result="torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v, "
                                              "k_all, v_all"),
         failing={RECOMPUTE: "only to the new token"}),
    Case("cache_attends_old_only", _cache_step(
        scores="q @ k_cache.transpose(-2, -1) / math.sqrt(q.shape[-1])",
        result="torch.softmax(scores, dim=-1) @ v_cache, k_all, v_all"),
         failing={RECOMPUTE: "not to its own key"}),
    Case("cache_not_scaled", _cache_step(scores="q @ k_all.transpose(-2, -1)"),
         failing={RECOMPUTE: "not scaled"}),
    Case("cache_scaled_by_d", _cache_step(scores="q @ k_all.transpose(-2, -1) / q.shape[-1]"),
         failing={RECOMPUTE: "divided by d instead of √d"}),
    Case("cache_square_causal_mask", _cache_step(
        masking="scores = scores.masked_fill(~torch.ones(scores.shape[-2:], dtype=torch.bool)"
                ".tril(), float('-inf'))"),
         failing={RECOMPUTE: "causal mask"}),
    Case("cache_swapped", _cache_step(result="torch.softmax(scores, dim=-1) @ v_all, v_all, k_all"),
         failing={"test_kv_cache_grows": "swapped", RECOMPUTE: ""}),
    Case("noisy_but_correct", {"kv_cache_step": '''
import warnings

def kv_cache_step(q, k, v, k_cache, v_cache):
    print("step", tuple(k_cache.shape))
    warnings.warn("a noisy step")
    keys = torch.cat([k_cache, k], dim=k_cache.dim() - 2)
    values = torch.cat([v_cache, v], dim=-2)
    weights = torch.einsum("...qd,...kd->...qk", q, keys).div(q.shape[-1] ** 0.5).softmax(-1)
    return torch.einsum("...qk,...kd->...qd", weights, values), keys, values
'''}, extra=("print(apply_rope(torch.ones(1, 3, 4), torch.arange(3)))",)),
]

#!/usr/bin/env python3
"""Train the tiny GPT-2 fixture model and cut the calibration text.

Run by hand (about half an hour on two CPU cores shared with other work; the wall time
of the run is at the end of train.log):

    /work/venv/bin/python scripts/make_fixtures.py

Reads (defaults: ../shared/data beside the repository if it exists, else /work/shared/data;
override with --corpus / --wiki):
    corpus/train.txt                    training + calibration source
    wikitext-2-raw/wiki.test.hfjoin.txt evaluation text (held out)

Writes (paths relative to the repository, wherever the script is run from):
    fixtures/tiny-gpt2/{config.json, generation_config.json, model.safetensors,
                        vocab.json, merges.txt, reference.json, train.log, README.md}
    fixtures/calibration/{corpus-calib.txt, README.md}

What and why:
  * The corpus is a concatenation of documents separated by "\\n\\n\\n". The
    inaugural-address section (one contiguous byte range, found by the two
    marker strings below) is held out of all training, tokenizer training
    included. Its first ~300 KB, cut at a document boundary, become the
    calibration text; the rest is a held-out validation text whose loss is
    reported during training. Prose addresses were chosen over the corpus tail
    (Reuters tables and Tiny Shakespeare) because they are ordinary running
    English, which is what calibration for WikiText evaluation should see.
  * The tokenizer is a byte-level BPE with GPT-2's pre-tokenisation, trained
    with the `tokenizers` library and written in GPT-2's own file formats
    (vocab.json + merges.txt with "#version: 0.2"), `<|endoftext|>` last. The
    files are then checked against an independent, plain-Python GPT-2 BPE
    encoder, so the Swift tokenizer can be tested on them.
  * The model is a stock `transformers.GPT2LMHeadModel`, so the checkpoint has
    exactly the tensor names and layout of a real GPT-2 checkpoint.
  * Everything is seeded and single-configuration (2 threads, deterministic
    algorithms), so a rerun with the same versions on the same machine gives the
    same weights (the log prints each file's sha256 to compare).
  * Everything printed goes to fixtures/tiny-gpt2/train.log as well; the two
    READMEs are generated from the same numbers, so they cannot disagree with
    the log.
"""

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time

# Other jobs share the two cores; spinning OpenMP workers then slow training many times over.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import regex
import tokenizers
import torch
import transformers
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_data(rel):
    """Default path of a shared data file: ../shared/data beside the repository (as seen
    from /work/main), else /work/shared/data (as seen from a worktree elsewhere)."""
    beside = os.path.normpath(os.path.join(REPO, "..", "shared", "data", rel))
    return beside if os.path.exists(beside) else os.path.join("/work/shared/data", rel)


EXPECTED_CORPUS_SHA256 = "7f6fb558b41cebc4f709ca98572c7d6c4d51b503c858146ad325f20e422248dd"
DOC_SEP = b"\n\n\n"
# First words of the held-out section (Washington, 1789) and of the section that follows it
# (the first Reuters article). Both occur exactly once in train.txt.
HOLDOUT_START = b"Fellow-Citizens of the Senate and of the House of Representatives:\nAmong the vicissitudes"
HOLDOUT_END = b"ASIAN EXPORTERS FEAR DAMAGE FROM U.S.-JAPAN RIFT"
EOT = "<|endoftext|>"

# A short text with the cases a GPT-2 pre-tokeniser must get right (contractions, digits,
# runs of spaces, newlines, punctuation, non-ASCII); its ids go into reference.json.
TOKENIZER_CHECK_TEXT = (
    "Hello world! It's 1,234.5 miles -- isn't it?  Two  spaces,\n\nnew lines\tand tabs; "
    "caf\u00e9 na\u00efve \u00bfQu\u00e9? \u2014 \u201cquoted\u201d 'single' I'll we've they're "
    "x=3*4 <tag> 100% #1 @user \u4f60\u597d \U0001F600 end.\n"
)


# --------------------------------------------------------------------------------------
# logging: everything printed also lands in train.log


class Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
            st.flush()

    def flush(self):
        for st in self.streams:
            st.flush()

    def isatty(self):  # libraries ask before colouring their output; keep the log plain
        return False


def f32(v):
    """Shortest decimal that reads back as the same float32 (keeps reference.json small)."""
    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def rel(path):
    """Path as printed in the log: relative to the repository when inside it."""
    r = os.path.relpath(os.path.abspath(path), REPO)
    return path if r.startswith("..") else r


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return sha256_bytes(f.read())


# --------------------------------------------------------------------------------------
# corpus split


def split_corpus(corpus, calib_target):
    """Return (train_docs, held_range, calib_range, val_docs).

    train_docs: every document outside the held-out section (list of str)
    held_range: (begin, end) byte offsets of the held-out section in train.txt
    calib_range: (begin, end) byte offsets of the calibration text in train.txt
    val_docs: held-out documents after the calibration text (list of str)
    """
    assert corpus.count(HOLDOUT_START) == 1 and corpus.count(HOLDOUT_END) == 1
    h_begin = corpus.index(HOLDOUT_START)
    h_end = corpus.index(HOLDOUT_END) - len(DOC_SEP)  # the separator belongs to neither side
    assert corpus[h_begin - len(DOC_SEP):h_begin] == DOC_SEP
    assert corpus[h_end:h_end + len(DOC_SEP)] == DOC_SEP

    # Calibration: whole documents from the start of the held-out section until the
    # target size is reached, so the text never starts or stops mid-speech.
    pos = h_begin
    while pos - h_begin < calib_target:
        nxt = corpus.find(DOC_SEP, pos, h_end)
        pos = h_end if nxt < 0 else nxt + len(DOC_SEP)
        if pos == h_end:
            break
    c_end = pos - len(DOC_SEP) if pos < h_end else h_end
    calib_range = (h_begin, c_end)

    def docs(b):
        return [d.decode("utf-8") for d in b.split(DOC_SEP) if d.strip()]

    train_docs = docs(corpus[:h_begin]) + docs(corpus[h_end:])
    val_docs = docs(corpus[c_end:h_end])
    return train_docs, (h_begin, h_end), calib_range, val_docs


# --------------------------------------------------------------------------------------
# tokenizer


def train_tokenizer(train_docs, vocab_size, out_dir):
    """Train the BPE on the training documents only and write GPT-2-format files.

    `tokenizers` puts special tokens first; GPT-2 has `<|endoftext|>` as its last id, so
    the BPE is trained to vocab_size-1 entries and the special token is appended.
    """
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(train_docs, vocab_size=vocab_size - 1, min_frequency=2,
                            show_progress=False, special_tokens=[])
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save_model(tmp)
        with open(os.path.join(tmp, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        with open(os.path.join(tmp, "merges.txt"), encoding="utf-8") as f:
            merges_text = f.read()
    assert sorted(vocab.values()) == list(range(vocab_size - 1)), "vocab ids not contiguous"
    vocab = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    vocab[EOT] = vocab_size - 1
    lines = merges_text.rstrip("\n").split("\n")
    assert lines[0].startswith("#version"), lines[0]
    merges = [tuple(l.split(" ")) for l in lines[1:]]
    assert all(len(m) == 2 for m in merges)

    # Same byte-for-byte conventions as OpenAI's files under their Hugging Face names:
    # ASCII-escaped JSON with ", " / ": " separators, ids in order; merges one per line.
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="ascii") as f:
        f.write(json.dumps(vocab, ensure_ascii=True))
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    return vocab, merges


def load_tokenizer(out_dir):
    """Load the tokenizer back from the written files, so training uses exactly them."""
    tok = ByteLevelBPETokenizer(os.path.join(out_dir, "vocab.json"),
                                os.path.join(out_dir, "merges.txt"), add_prefix_space=False)
    tok.add_special_tokens([EOT])
    return tok


def gpt2_byte_to_unicode():
    """GPT-2's reversible map from bytes to printable characters (written from its spec:
    printable Latin-1 bytes map to themselves, the others to U+0100 upwards in order)."""
    printable = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


GPT2_PRETOKENIZE = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


class ReferenceBPE:
    """A deliberately plain GPT-2 BPE encoder: repeatedly merge the adjacent pair with the
    lowest merge rank. Used only to cross-check that the files mean what `tokenizers`
    does with them."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.b2u = gpt2_byte_to_unicode()
        self.cache = {}

    def _bpe(self, word):
        parts = list(word)
        while len(parts) > 1:
            ranked = [(self.ranks.get((parts[i], parts[i + 1]), math.inf), i)
                      for i in range(len(parts) - 1)]
            rank, _ = min(ranked)
            if rank == math.inf:
                break
            pair = next((parts[i], parts[i + 1]) for r, i in ranked if r == rank)
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def encode(self, text):
        ids = []
        for piece in GPT2_PRETOKENIZE.findall(text):
            word = "".join(self.b2u[b] for b in piece.encode("utf-8"))
            if word not in self.cache:
                self.cache[word] = [self.vocab[p] for p in self._bpe(word)]
            ids.extend(self.cache[word])
        return ids


# --------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def sliding_window_nll(model, ids, window, stride, batch_size=16):
    """Sum of token NLLs (nats) and number of scored tokens, following the Hugging Face
    "perplexity of fixed-length models" protocol: windows start at 0, stride, 2*stride...;
    each window scores only the tokens no earlier window scored. A window's first token has
    no context inside it and is not scored, so with stride == window the first token of
    every window goes unscored (as in the guide); with stride < window every token but the
    text's first is scored exactly once."""
    n = len(ids)
    plan, begin, prev_end = [], 0, 0
    while True:
        end = min(begin + window, n)
        plan.append((begin, end, max(prev_end, begin + 1)))
        prev_end = end
        if end == n:
            break
        begin += stride
    ids_t = torch.as_tensor(ids, dtype=torch.long)
    total, count = 0.0, 0
    # windows of equal length are batched together; only the last can be shorter
    i = 0
    while i < len(plan):
        length = plan[i][1] - plan[i][0]
        group = [plan[i]]
        while (len(group) < batch_size and i + len(group) < len(plan)
               and plan[i + len(group)][1] - plan[i + len(group)][0] == length):
            group.append(plan[i + len(group)])
        x = torch.stack([ids_t[b:e] for b, e, _ in group])
        logp = torch.log_softmax(model(input_ids=x).logits.float(), dim=-1)
        # position t predicts token t+1
        nll = -logp[:, :-1, :].gather(2, x[:, 1:, None]).squeeze(2).double()
        for row, (b, e, first) in enumerate(group):
            total += nll[row, first - b - 1:].sum().item()
            count += e - first
        i += len(group)
    assert count == sum(e - f for _, e, f in plan)
    return total, count


def ppl(model, ids, window, stride):
    total, count = sliding_window_nll(model, ids, window, stride)
    return math.exp(total / count), total / count, count


def encode_docs(tok, docs, eot_id):
    """GPT-2-style training stream: every document followed by <|endoftext|>."""
    out = []
    for enc in tok.encode_batch(docs):
        out.extend(enc.ids)
        out.append(eot_id)
    return np.asarray(out, dtype=np.int64)


def lr_at(step, steps, peak, warmup, floor_frac):
    """Linear warm-up, then cosine decay to floor_frac*peak."""
    if step <= warmup:
        return peak * step / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (floor_frac + (1 - floor_frac) * 0.5 * (1 + math.cos(math.pi * t)))


# --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=shared_data("corpus/train.txt"))
    ap.add_argument("--wiki", default=shared_data("wikitext-2-raw/wiki.test.hfjoin.txt"))
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "tiny-gpt2"))
    ap.add_argument("--calib-out", default=os.path.join(REPO, "fixtures", "calibration"))
    ap.add_argument("--calib-bytes", type=int, default=300_000)
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--n-positions", type=int, default=256)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=200)
    args = ap.parse_args()

    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.calib_out, exist_ok=True)
    log_path = os.path.join(args.out, "train.log")
    log_file = open(log_path, "w", encoding="utf-8")
    sys.stdout = Tee(sys.__stdout__, log_file)
    sys.stderr = Tee(sys.__stderr__, log_file)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    print(f"make_fixtures.py  started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"python {platform.python_version()}  torch {torch.__version__}  transformers "
          f"{transformers.__version__}  tokenizers {tokenizers.__version__}  numpy {np.__version__}")
    print(f"machine {platform.machine()}  torch threads {torch.get_num_threads()}")
    print("args " + json.dumps({k: rel(v) if isinstance(v, str) else v for k, v in vars(args).items()},
                               sort_keys=True))

    # ---- corpus and calibration -------------------------------------------------------
    with open(args.corpus, "rb") as f:
        corpus = f.read()
    corpus_sha = sha256_bytes(corpus)
    print(f"\n== corpus {rel(args.corpus)}: {len(corpus)} bytes, sha256 {corpus_sha}")
    if corpus_sha != EXPECTED_CORPUS_SHA256:
        print("WARNING: corpus sha256 differs from the one this script was written for")
    train_docs, (h_begin, h_end), (c_begin, c_end), val_docs = split_corpus(corpus, args.calib_bytes)
    train_bytes = sum(len(d.encode("utf-8")) for d in train_docs)
    print(f"held-out section (inaugural addresses): bytes [{h_begin}, {h_end}) = {h_end - h_begin} bytes")
    print(f"calibration: bytes [{c_begin}, {c_end}) = {c_end - c_begin} bytes")
    print(f"validation: the rest of the held-out section, {len(val_docs)} documents")
    print(f"training: {len(train_docs)} documents, {train_bytes} bytes (everything outside the held-out section)")
    calib = corpus[c_begin:c_end]
    calib_path = os.path.join(args.calib_out, "corpus-calib.txt")
    with open(calib_path, "wb") as f:
        f.write(calib)
    calib_sha = sha256_bytes(calib)
    calib_docs = calib.split(DOC_SEP)
    calib_first = calib_docs[0].split(b"\n")[1][:60].decode()
    calib_last = calib_docs[-1].rstrip()[-60:].decode()
    print(f"wrote {rel(calib_path)}: {len(calib)} bytes, {len(calib_docs)} documents, sha256 {calib_sha}")
    print(f'  starts "{calib_first}...", ends "...{calib_last}"')

    # ---- tokenizer --------------------------------------------------------------------
    print(f"\n== tokenizer: byte-level BPE, vocab {args.vocab_size} ({EOT} = {args.vocab_size - 1})")
    t0 = time.time()
    vocab, merges = train_tokenizer(train_docs, args.vocab_size, args.out)
    tok = load_tokenizer(args.out)
    eot_id = tok.token_to_id(EOT)
    assert eot_id == args.vocab_size - 1 and tok.get_vocab_size() == args.vocab_size
    print(f"trained in {time.time() - t0:.1f} s: {len(vocab)} ids, {len(merges)} merges; "
          f"first merges {merges[:5]}")
    for name in ("vocab.json", "merges.txt"):
        p = os.path.join(args.out, name)
        print(f"  {name}: {os.path.getsize(p)} bytes, sha256 {sha256_file(p)}")

    # independent check of the files against plain GPT-2 BPE
    with open(args.wiki, encoding="utf-8") as f:
        wiki_text = f.read()
    ref = ReferenceBPE(vocab, merges)
    check_texts = [TOKENIZER_CHECK_TEXT, wiki_text[:200_000], calib.decode("utf-8")[:100_000]]
    for t in check_texts:
        a, b = tok.encode(t).ids, ref.encode(t)
        assert a == b, "tokenizers and the reference GPT-2 BPE disagree"
    print(f"cross-check: tokenizers == plain-Python GPT-2 BPE on "
          f"{sum(len(t) for t in check_texts)} characters")
    check_ids = tok.encode(TOKENIZER_CHECK_TEXT).ids
    assert tok.decode(check_ids) == TOKENIZER_CHECK_TEXT

    t0 = time.time()
    train_ids = encode_docs(tok, train_docs, eot_id)
    val_ids = encode_docs(tok, val_docs, eot_id)
    wiki_ids = tok.encode(wiki_text).ids
    print(f"encoded in {time.time() - t0:.1f} s: training {len(train_ids)} tokens "
          f"({train_bytes / len(train_ids):.2f} bytes/token), validation {len(val_ids)} tokens, "
          f"wiki.test.hfjoin.txt {len(wiki_ids)} tokens")

    # ---- model ------------------------------------------------------------------------
    config = GPT2Config(
        vocab_size=args.vocab_size, n_positions=args.n_positions, n_embd=args.n_embd,
        n_layer=args.n_layer, n_head=args.n_head, activation_function="gelu_new",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # tiny model, < 2 epochs: no dropout
        bos_token_id=eot_id, eos_token_id=eot_id, tie_word_embeddings=True)
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n== model: GPT2LMHeadModel n_embd {args.n_embd}, n_layer {args.n_layer}, "
          f"n_head {args.n_head}, n_positions {args.n_positions}, vocab {args.vocab_size}, "
          f"gelu_new, tied lm_head")
    print(f"parameters: {n_params} ({n_params * 4 / 1e6:.2f} MB in float32)")

    # weight decay only on matrices; biases and LayerNorm parameters are left alone
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    ctx = args.n_positions
    train_t = torch.from_numpy(train_ids)
    offsets = torch.arange(ctx)
    gen = torch.Generator().manual_seed(args.seed)
    tokens_per_step = args.batch_size * ctx
    print(f"training: {args.steps} steps x {args.batch_size} windows x {ctx} tokens = "
          f"{args.steps * tokens_per_step} tokens ({args.steps * tokens_per_step / len(train_ids):.2f} "
          f"epochs), AdamW peak lr {args.lr}, warm-up {args.warmup}, cosine to 10%, "
          f"weight decay {args.weight_decay}, grad clip 1.0")

    def val_loss():
        model.eval()
        _, nll, _ = ppl(model, val_ids, ctx, ctx)
        model.train()
        return nll

    print(f"step 0: validation loss {val_loss():.4f}")
    t_train = time.time()
    recent = []
    model.train()
    for step in range(1, args.steps + 1):
        lr = lr_at(step, args.steps, args.lr, args.warmup, 0.1)
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(train_ids) - ctx, (args.batch_size,), generator=gen)
        x = train_t[starts[:, None] + offsets]
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent.append(loss.item())
        if step % 50 == 0 or step == args.steps:
            el = time.time() - t_train
            print(f"step {step:5d}  lr {lr:.2e}  train loss (last 50) {np.mean(recent[-50:]):.4f}  "
                  f"{step * tokens_per_step / el:.0f} tok/s  {el:.0f} s")
        if step % args.eval_every == 0 or step == args.steps:
            print(f"step {step:5d}  validation loss {val_loss():.4f}")
    train_time = time.time() - t_train
    final_train_loss = float(np.mean(recent[-100:]))
    print(f"training took {train_time:.0f} s; mean train loss over the last 100 steps {final_train_loss:.4f}")

    # ---- evaluation -------------------------------------------------------------------
    model.eval()
    print("\n== evaluation (own tokenizer; HF sliding-window protocol, window = n_positions)")
    # train loss measured the same way as the held-out ones, on a fixed training sample
    sample_gen = torch.Generator().manual_seed(args.seed + 1)
    s0 = int(torch.randint(0, len(train_ids) - 200_000, (1,), generator=sample_gen))
    train_ppl, train_nll, train_n = ppl(model, train_ids[s0:s0 + 200_000], ctx, ctx)
    val_ppl, val_nll, val_n = ppl(model, val_ids, ctx, ctx)
    print(f"training sample (tokens {s0}..{s0 + 200_000}): loss {train_nll:.4f}, ppl {train_ppl:.3f} ({train_n} tokens)")
    print(f"held-out validation (inaugural addresses): loss {val_nll:.4f}, ppl {val_ppl:.3f} ({val_n} tokens)")
    results = {}
    slice_tokens = 4096
    for ids in (wiki_ids[:slice_tokens], wiki_ids):
        for stride in (ctx, ctx // 2):
            p, nll, n = ppl(model, ids, ctx, stride)
            results[(len(ids), stride)] = (p, nll, n)
            print(f"wiki.test.hfjoin.txt first {len(ids)} tokens: window {ctx} stride {stride}: "
                  f"ppl {p:.4f} (mean NLL {nll:.6f}, {n} scored tokens)")

    # ---- save -------------------------------------------------------------------------
    model.save_pretrained(args.out, safe_serialization=True)
    reloaded = GPT2LMHeadModel.from_pretrained(args.out).eval()
    probe = torch.as_tensor(wiki_ids[:16])[None]
    with torch.no_grad():
        logits = model(input_ids=probe).logits[0]
        assert torch.equal(logits, reloaded(input_ids=probe).logits[0]), "reload changed the model"
    print(f"\nsaved and reloaded {rel(args.out)}: identical logits")

    reference = {
        "about": "Reference values for the tiny fixture model, computed in float32 by "
                 "transformers. Written by scripts/make_fixtures.py.",
        "tokenizer_check": {"text": TOKENIZER_CHECK_TEXT, "ids": check_ids},
        "wikitext_test_hfjoin": {
            "file": "wiki.test.hfjoin.txt",
            "sha256": sha256_bytes(wiki_text.encode("utf-8")),
            "tokens": len(wiki_ids),
            "first_ids": wiki_ids[:64],
            "protocol": "Hugging Face sliding window: windows begin at 0, stride, 2*stride, ... "
                        "(until one reaches the end); window length n_positions; each window "
                        "scores only tokens no earlier window scored; a window's first token has "
                        "no context and is not scored; ppl = exp(sum NLL / scored_tokens), "
                        "counted per token",
            "perplexity": [
                {"first_tokens": count, "window": ctx, "stride": stride, "scored_tokens": n,
                 "mean_nll": nll, "ppl": p}
                for (count, stride), (p, nll, n) in results.items()],
        },
        "logits_check": {
            "input_ids": wiki_ids[:16],
            "logits_position0": [f32(v) for v in logits[0]],
            "logits_last": [f32(v) for v in logits[-1]],
        },
    }
    with open(os.path.join(args.out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")

    files = sorted(os.listdir(args.out))
    print("files in " + rel(args.out) + ":")
    for name in files:
        if name in ("train.log", "README.md"):
            continue
        p = os.path.join(args.out, name)
        print(f"  {name}: {os.path.getsize(p)} bytes, sha256 {sha256_file(p)}")

    wall = time.time() - t_start
    print(f"\nwall time {wall:.0f} s ({wall / 60:.1f} min)")

    # ---- READMEs (numbers are the ones printed above) ---------------------------------
    write_model_readme(args, n_params, len(train_docs), train_bytes, len(train_ids), len(val_ids),
                       len(wiki_ids), final_train_loss, train_nll, val_nll, val_ppl, results,
                       (h_begin, h_end), (c_begin, c_end), train_time, wall, ctx, corpus_sha)
    write_calib_readme(args, corpus_sha, len(corpus), (h_begin, h_end), (c_begin, c_end),
                       len(calib_docs), calib_sha, calib_first, calib_last)
    print("wrote README.md files; done")


def write_model_readme(args, n_params, n_docs, train_bytes, n_train, n_val, n_wiki, final_train_loss,
                       train_nll, val_nll, val_ppl, results, held, cal, train_time, wall, ctx, corpus_sha):
    tokens = args.steps * args.batch_size * ctx
    rows = "\n".join(
        f"| first {count} | {ctx} | {stride} | {n} | {nll:.6f} | {p:.4f} |"
        for (count, stride), (p, nll, n) in results.items())
    text = f"""# tiny-gpt2

A tiny GPT-2 trained for EasyQuant's tests: a stock `transformers.GPT2LMHeadModel`, saved with
`save_pretrained(..., safe_serialization=True)`, so its tensor names and layout are those of a
real GPT-2 checkpoint (`transformer.` prefix, Conv1D weights stored `[in, out]`, lm_head tied to
`transformer.wte.weight` and therefore not stored). It has its own byte-level BPE tokenizer in
GPT-2's file formats. Made by `scripts/make_fixtures.py`; every number below is from `train.log`.

## Model
| | |
|---|---|
| vocab_size | {args.vocab_size} (`<|endoftext|>` = {args.vocab_size - 1}, the last id) |
| n_positions | {args.n_positions} |
| n_embd / n_layer / n_head | {args.n_embd} / {args.n_layer} / {args.n_head} |
| activation | gelu_new; layer_norm_epsilon 1e-5; dropout 0 |
| parameters | {n_params} ({n_params * 4 / 1e6:.2f} MB in float32) |

## Training
- Data: `corpus/train.txt` (sha256 `{corpus_sha}`) minus the held-out inaugural-address section,
  bytes [{held[0]}, {held[1]}): {n_docs} documents, {train_bytes} bytes, {n_train} tokens
  (each document followed by `<|endoftext|>`). The tokenizer was trained on the same documents.
- {args.steps} steps of {args.batch_size} random windows of {ctx} tokens ({tokens} tokens),
  AdamW (betas 0.9/0.95, weight decay {args.weight_decay} on matrices), peak lr {args.lr},
  {args.warmup} warm-up steps then cosine decay to 10%, gradient clip 1.0, seed {args.seed},
  {args.threads} threads, {train_time:.0f} s of training ({wall:.0f} s wall time for the whole script).
- Final train loss (mean of the last 100 steps): {final_train_loss:.4f}.
  On a fixed 200,000-token training sample: loss {train_nll:.4f}.
- Held-out validation (inaugural addresses after the calibration text, {n_val} tokens): loss
  {val_nll:.4f}, ppl {val_ppl:.3f}.

## Perplexity on WikiText-2 test (`wiki.test.hfjoin.txt`, {n_wiki} tokens with this tokenizer)
Hugging Face sliding-window protocol: windows of {ctx} tokens starting every `stride` tokens; each
window scores only the tokens no earlier window scored; a window's first token has no context and
is not scored, so with stride {ctx} the first token of every window goes unscored, and with
stride {ctx // 2} every token but the text's first is scored once. Counting is per token (the
guide's sample code weights each window's mean loss by one token fewer when stride < window,
which shifts its result slightly). Also in `reference.json`.

| tokens | window | stride | scored | mean NLL | ppl |
|---|---|---|---|---|---|
{rows}

## Files
- `config.json`, `generation_config.json`, `model.safetensors`: as `save_pretrained` wrote them (float32).
- `vocab.json`, `merges.txt`: the tokenizer (GPT-2 formats; checked against a plain GPT-2 BPE encoder).
- `reference.json`: tokenizer ids of a tricky text, the first 64 ids of `wiki.test.hfjoin.txt`,
  the perplexities above, and the logits at positions 0 and 15 for its first 16 ids.
- `train.log`: the script's full output.
"""
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)


def write_calib_readme(args, corpus_sha, corpus_len, held, cal, n_docs, calib_sha, first, last):
    text = f"""# calibration

`corpus-calib.txt` is the calibration text for EasyQuant's activation-aware methods
(SmoothQuant, AWQ, ...). It is exactly bytes [{cal[0]}, {cal[1]}) ({cal[1] - cal[0]} bytes) of
`corpus/train.txt` ({corpus_len} bytes, sha256 `{corpus_sha}`; see that file's `SOURCES.tsv`):
the first {n_docs} United States presidential inaugural addresses of the NLTK `inaugural` corpus
(public domain), whole addresses separated by two blank lines, from Washington's first
("{first}...") to Lincoln's first ("...{last}").

sha256 `{calib_sha}`

The tiny fixture model never saw it: the whole inaugural section, bytes [{held[0]}, {held[1]}),
was held out of its training and of its tokenizer's training (the rest of that section is its
validation text). It shares no text with WikiText-2 test, the evaluation text.
Made by `scripts/make_fixtures.py`.
"""
    with open(os.path.join(args.calib_out, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()

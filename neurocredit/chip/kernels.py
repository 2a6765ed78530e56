"""A compiled (numba) kernel of the N-chip fixed-point learning emulator: the neuron update, the
W·s messages and the learning engine of every chip, step by step, in one call — the same
arithmetic as :func:`neurocredit.chip.emulator.emulate_chips` (its numpy path stays the
reference; the two are tested equal weight for weight and spike for spike).

Per chip and step t (Lava's LoihiProtocol, as in :mod:`neurocredit.chip.emulator`)::

    every population p:  a = Σ buf of its 'a' connections, e = Σ buf of its 'third' ones
        'lif'/'third':   u ← wrap24(decay(u, du) + a << 6),  v ← clip(decay(v, dv) + u + bias),
                         s = v > vth << 6;  'third': e' = sign(e)(|e| >> third_shift)[v ≥ gate_lo],
                         y1 = s, y2 = clip(−e', 0, 127), y3 = clip(e', 0, 127), err = e'
        'graded':        s = err = a·[|a| > vth]
    every connection c:  buf_c = (W_c s_src << max(E, 0)) >> max(−E, 0)
    every plastic c:     the product series (Lava's bit-approximate engine, t_epoch = 1):
        acc = W << 7;  acc ← clip(acc + clip(x0·m·Π clip(f_i) >> max(0, Σ bits_i + 4 − 15) << (7 + k)))
        W ← clip((acc >> 7) + (128 r_w < acc & 127), −256, 255) (⊙ mask)

on the columns whose x0 = 1 (every column on a step where a u<d> product ticks), with the post
traces read as floor(y e^(−1/65535)) + (r_y < frac).  Davies et al. 2018 (IEEE Micro 38(1),
Loihi's learning engine); the arithmetic is lava-nc's LearningConnectionModelBitApproximate.

Circuits the kernel does not cover (graded-rate populations, ψ surrogates, graded extension
factors, eligibility traces and tags, other product dependencies or factors) return None from
:func:`kernel_plan`; the emulator then runs its numpy path.  ``numba`` compiles with
``cache=True``: the first call in a fresh environment pays the compile (see
:func:`compile_seconds`)."""
from __future__ import annotations

import time

import numpy as np

from neurocredit.chip import rate as RATE
from neurocredit.chip.ir import Circuit, Connection, engine_shift, factor_bits
from neurocredit.neurons import fixed_point as fp

try:                                  # optional at import: without numba the emulator runs numpy
    import numba
    from numba import njit, prange
except ImportError:                   # pragma: no cover - numba is a declared dependency
    numba = None

PORTS = ("s", "err", "y1", "y2", "y3", "in")      # the outputs a population exposes (O[port])
FACTORS = ("y1", "y2", "y3", "w")                 # factor codes 0..3
KIND_CODE = {"lif": 0, "third": 1, "graded": 2}
MAX_FACTORS = 4
Y_DECAY = np.exp(-1 / 65535)
_yv = Y_DECAY * np.arange(128, dtype=np.int64)
TRACE_FLOOR, TRACE_FRAC = np.floor(_yv).astype(np.int64), _yv % 1     # as emulator.trace_values


def available() -> bool:
    """Whether numba is importable (the kernel can run)."""
    return numba is not None


def kernel_plan(ref: Circuit) -> str | None:
    """None when the kernel covers circuit ``ref`` (and its chips), else the reason it does not."""
    if numba is None:
        return "numba is not installed"
    for p in ref.populations:
        if p.kind not in KIND_CODE or p.kind in RATE.KINDS:
            return f"population {p.name}: kind {p.kind!r}"
        if getattr(p, "psi_slope", 0):
            return f"population {p.name}: a psi surrogate"
    names = {p.name for p in ref.populations}
    for c in ref.connections:
        if c.src in names and c.src_port not in PORTS:
            return f"connection {c.name}: source port {c.src_port!r}"
        if not c.plastic:
            continue
        if c.graded is not None or c.pre_trace[1] > 0 or getattr(c, "tag", None):
            return f"connection {c.name}: graded factors or eligibility"
        if c.view not in ("forward", "transposed"):
            return f"connection {c.name}: view {c.view!r}"
        for p in c.plastic:
            if p.dependency != "x0" and p.decimation is None:
                return f"connection {c.name}: dependency {p.dependency!r}"
            if not set(p.factors) <= set(FACTORS) or len(p.factors) > MAX_FACTORS:
                return f"connection {c.name}: factors {p.factors}"
            if 7 + int(p.exp) < 0 or 7 + int(p.exp) > 30:
                return f"connection {c.name}: exponent {p.exp}"
    return None


fp_MAX_UV = fp.MAX_UV
TRACE_FLOOR_NB, TRACE_FRAC_NB = TRACE_FLOOR, TRACE_FRAC

if numba is not None:
    @njit(cache=True, nogil=True, inline="always")
    def _decayed(x, mul):
        prod = x * mul
        return -((-prod) >> 12) if prod < 0 else prod >> 12

    @njit(cache=True, nogil=True, inline="always")
    def _trace(y, r):
        """floor(y e^(-1/65535)) + (r < frac): the engine's reading of a post trace."""
        if 0 <= y <= 127:
            return TRACE_FLOOR_NB[y] + (1 if r < TRACE_FRAC_NB[y] else 0)
        yv = Y_DECAY * y
        fl = np.floor(yv)
        return np.int64(fl) + (1 if r < yv - fl else 0)

    @njit(cache=True, nogil=True, inline="always")
    def _current(mant, left, right, nf, fcode, fbits, tv, row, w):
        """clip((m Π clip(f_i) >> right) << left) of one product at one synapse."""
        cur = np.int64(1)
        for i in range(nf):
            f = fcode[i]
            val = w if f == 3 else tv[f, row]
            lo, hi = -(np.int64(1) << fbits[i]), (np.int64(1) << fbits[i]) - 1
            cur *= min(max(val, lo), hi)
        cur = ((cur * mant) >> right) << left
        return min(max(cur, -32769), 32767)

    @njit(cache=True, nogil=True)
    def _add(acc, seg, n):
        for i in range(n):
            acc[i] += seg[i]

    @njit(cache=True, nogil=True)
    def _add_scaled(acc, seg, n, x):
        for i in range(n):
            acc[i] += seg[i] * x

    @njit(cache=True, nogil=True)
    def _shift(seg, dl, n):
        """seg <- clip(seg + dl, -256, 255), in int16 (|seg| <= 256, |dl| <= 512: no overflow;
        int16 arithmetic lets LLVM vectorise the loop)"""
        for i in range(n):
            seg[i] = min(max(np.int16(seg[i] + dl[i]), np.int16(-256)), np.int16(255))

    @njit(cache=True, nogil=True)
    def _shift_masked(seg, dl, mask, n):
        for i in range(n):
            seg[i] = min(max(np.int16(seg[i] + dl[i]), np.int16(-256)), np.int16(255)) * np.int16(mask[i])

    @njit(cache=True, nogil=True)
    def _chips(c_lo, c_hi, t0, t1, narrow, U, V, O, BUF, W, S,
             pop_off, pop_kind, umul, vmul, vth6, vth, tshift, gate, bias,
             c_src_stream, c_src_off, c_src_port, c_src_n, c_dst_pop, c_dst_off, c_dst_n, c_dst_port, c_view,
             c_woff, c_boff, sh_l, sh_r, c_plastic, c_mask, MASK,
             pr_off, pr_mant, pr_left, pr_right, pr_dec, pr_nf, pr_fcode, pr_fbits, pr_w, pr_traced,
             RY, RW, rec_pop, rec_port, rec_off, REC):
        n_chips = U.shape[0]
        n_pops = pop_kind.shape[0]
        n_conns = c_src_n.shape[0]
        big = 1
        for p in range(n_pops):
            big = max(big, pop_off[p + 1] - pop_off[p])
        for k in range(n_conns):
            big = max(big, c_src_n[k], c_dst_n[k])
        a = np.zeros(big, np.int64)
        e = np.zeros(big, np.int64)
        s = np.zeros(big, np.int64)
        x0 = np.zeros(big, np.bool_)
        tv = np.zeros((3, big), np.int64)
        n_prod = max(1, pr_mant.shape[0])
        curs = np.zeros((n_prod, big), np.int64)
        delta = np.zeros(big, np.int64)
        dl = np.zeros(big, np.int16)
        acc32 = np.zeros(big, np.int32)
        mixed = np.zeros(big, np.bool_)
        live = np.zeros(big, np.int64)
        applied = np.zeros(n_prod, np.bool_)
        maxuv = np.int64(fp_MAX_UV)
        for c in range(c_lo, c_hi):         # chips are independent: one chip's steps at a time (its
            for t in range(t0, t1):         # weights stay in cache)
                Uc, Vc, Bc, BUFc = U[c], V[c], bias[c], BUF[c]
                Os, Oerr, Oy1, Oy2, Oy3, Oin = O[0, c], O[1, c], O[2, c], O[3, c], O[4, c], O[5, c]
                for p in range(n_pops):
                    lo, hi = pop_off[p], pop_off[p + 1]
                    n = hi - lo
                    a[:n] = 0
                    e[:n] = 0
                    for k in range(n_conns):
                        if c_dst_pop[k] != p or c_dst_port[k] > 1:
                            continue
                        tgt = a if c_dst_port[k] == 0 else e
                        b0 = c_boff[k]
                        for i in range(n):
                            tgt[i] += BUFc[b0 + i]
                    kind = pop_kind[p]
                    um, vm, th6, thr, tsh, gl = umul[c, p], vmul[c, p], vth6[c, p], vth[c, p], tshift[c, p], gate[c, p]
                    for i in range(n):
                        j = lo + i
                        ai = a[i]
                        Oin[j] = ai
                        if kind == 2:
                            g = ai if abs(ai) > thr else 0
                            Os[j] = g
                            Oerr[j] = g
                            continue
                        u = _decayed(Uc[j], um) + (ai << 6)
                        if u > maxuv:
                            u -= 2 * maxuv
                        elif u <= -maxuv:
                            u += 2 * maxuv
                        v = _decayed(Vc[j], vm) + u + Bc[j]
                        v = min(max(v, -(maxuv - 1)), maxuv - 1)
                        spk = 1 if v > th6 else 0
                        if kind == 1:
                            th = e[i]
                            tt = 0
                            if th != 0 and v >= gl:
                                tt = (abs(th) >> tsh) * (1 if th > 0 else -1)
                            Oy2[j] = min(max(-tt, 0), 127)
                            Oy3[j] = min(max(tt, 0), 127)
                            Oerr[j] = tt
                            Oy1[j] = spk
                        Uc[j] = u
                        Vc[j] = 0 if spk else v
                        Os[j] = spk
                # connections: W s, then learning
                for k in range(n_conns):
                    ns, nd, wo, b0 = c_src_n[k], c_dst_n[k], c_woff[k], c_boff[k]
                    so = c_src_off[k]
                    if c_src_stream[k]:
                        St = S[c, t]
                        for j in range(ns):
                            s[j] = St[so + j]
                    else:
                        Op = O[c_src_port[k], c]
                        for j in range(ns):
                            s[j] = Op[so + j]
                    for i in range(nd):
                        delta[i] = 0
                    Wc = W[c]
                    if c_view[k] == 0:          # M = W^T [src, dst]: add the columns of the senders
                        acc32[:nd] = 0          # spikes: an int32 sum (narrow: |W| < 2^15, < 2^16 columns)
                        for j in range(ns):
                            sj = s[j]
                            if sj == 1 and narrow:
                                _add(acc32, Wc[wo + j * nd:wo + (j + 1) * nd], nd)
                            elif sj != 0:
                                _add_scaled(delta, Wc[wo + j * nd:wo + (j + 1) * nd], nd, sj)
                        if narrow:
                            for i in range(nd):
                                delta[i] += acc32[i]
                    else:                       # M = W [dst, src]
                        for i in range(nd):
                            seg = Wc[wo + i * ns:wo + (i + 1) * ns]
                            acc = np.int64(0)
                            for j in range(ns):
                                acc += seg[j] * s[j]
                            delta[i] = acc
                    for i in range(nd):
                        BUF[c, b0 + i] = (delta[i] << sh_l[c, k]) >> sh_r[c, k]
                    if not c_plastic[k]:
                        continue
                    # the learning epoch: columns, rows and traces of the view
                    dst = c_dst_off[k]
                    if c_view[k] == 0:
                        ncol, nrow = ns, nd
                        for j in range(ns):
                            x0[j] = s[j] > 0
                        for f in range(3):
                            for i in range(nd):
                                tv[f, i] = O[2 + f, c][dst + i]
                    else:
                        ncol, nrow = nd, ns
                        for j in range(nd):
                            x0[j] = Os[dst + j] > 0
                        for i in range(ns):
                            tv[0, i] = 0
                            tv[1, i] = min(max(-s[i], 0), 127)
                            tv[2, i] = min(max(s[i], 0), 127)
                    ry, r128 = RY[t, c], RW[t, c] * 128.0
                    tick, reads_w, all_traced = False, False, True
                    for q in range(pr_off[k], pr_off[k + 1]):
                        if pr_dec[q] >= 0:
                            applied[q] = (t + 1) % (1 << pr_dec[q]) == 0
                            tick = tick or applied[q]
                        else:
                            applied[q] = True
                        if applied[q]:
                            reads_w = reads_w or pr_w[q]
                            all_traced = all_traced and pr_traced[q]
                    any_x0 = False
                    for j in range(ncol):
                        any_x0 = any_x0 or x0[j]
                    if not tick and not any_x0:
                        if c_mask[k] and t == 0:
                            for m in range(ncol * nrow):
                                W[c, wo + m] *= MASK[c, wo + m]
                        continue
                    for i in range(nrow):
                        for f in range(3):
                            tv[f, i] = _trace(tv[f, i], ry)
                    if not tick and not reads_w:
                        # one current per (product, row); same-signed rows move by one delta
                        nlive, nmixed = 0, 0
                        for i in range(nrow):
                            mixed[i], delta[i] = False, 0
                            if all_traced and tv[0, i] == 0 and tv[1, i] == 0 and tv[2, i] == 0:
                                continue        # every product reads a trace, all 0 here
                            pos, neg, d = False, False, np.int64(0)
                            for q in range(pr_off[k], pr_off[k + 1]):
                                if not applied[q]:
                                    continue
                                cu = _current(pr_mant[q], pr_left[q], pr_right[q], pr_nf[q], pr_fcode[q],
                                              pr_fbits[q], tv, i, np.int64(0))
                                curs[q, i] = cu
                                pos = pos or cu > 0
                                neg = neg or cu < 0
                                d += cu
                            mixed[i] = pos and neg
                            nmixed += mixed[i]
                            delta[i] = (d >> 7) + (1 if r128 < (d & 127) else 0)
                            if mixed[i] or delta[i] != 0:
                                live[nlive] = i
                                nlive += 1
                        if nlive == 0:
                            pass
                        elif not nmixed:        # every live row moves by its delta: whole columns
                            for i in range(nrow):
                                dl[i] = min(max(delta[i], -512), 512)
                            for j in range(ncol):
                                if not x0[j]:
                                    continue
                                seg = Wc[wo + j * nrow:wo + (j + 1) * nrow]
                                if c_mask[k]:
                                    _shift_masked(seg, dl, MASK[c, wo + j * nrow:wo + (j + 1) * nrow], nrow)
                                else:
                                    _shift(seg, dl, nrow)
                        else:
                            for j in range(ncol):
                                if not x0[j]:
                                    continue
                                base = wo + j * nrow
                                for li in range(nlive):
                                    i = live[li]
                                    w = np.int64(Wc[base + i])
                                    if mixed[i]:
                                        acc = w << 7
                                        for q in range(pr_off[k], pr_off[k + 1]):
                                            if applied[q]:
                                                acc = min(max(acc + curs[q, i], -32769), 32767)
                                        nw = (acc >> 7) + (1 if r128 < (acc & 127) else 0)
                                    else:
                                        nw = w + delta[i]
                                    nw = min(max(nw, -256), 255)
                                    if c_mask[k]:
                                        nw *= MASK[c, base + i]
                                    Wc[base + i] = nw
                    else:
                        # element by element: every column on a tick, the x0 ones otherwise
                        for j in range(ncol):
                            if not tick and not x0[j]:
                                continue
                            base = wo + j * nrow
                            for i in range(nrow):
                                w = np.int64(W[c, base + i])
                                acc = w << 7
                                for q in range(pr_off[k], pr_off[k + 1]):
                                    if not applied[q] or (pr_dec[q] < 0 and not x0[j]):
                                        continue
                                    cu = _current(pr_mant[q], pr_left[q], pr_right[q], pr_nf[q], pr_fcode[q],
                                                  pr_fbits[q], tv, i, w)
                                    acc = min(max(acc + cu, -32769), 32767)
                                nw = (acc >> 7) + (1 if r128 < (acc & 127) else 0)
                                nw = min(max(nw, -256), 255)
                                if c_mask[k]:
                                    nw *= MASK[c, base + i]
                                W[c, base + i] = nw
                    if c_mask[k] and t == 0:       # W <- W' ⊙ mask once in full
                        for m in range(ncol * nrow):
                            W[c, wo + m] *= MASK[c, wo + m]
                for r in range(rec_pop.shape[0]):
                    lo, hi = pop_off[rec_pop[r]], pop_off[rec_pop[r] + 1]
                    for i in range(hi - lo):
                        REC[c, t, rec_off[r] + i] = O[rec_port[r], c, lo + i]

    @njit(cache=True, nogil=True, parallel=True)
    def _run(t0, t1, narrow, U, V, O, BUF, W, S, pop_off, pop_kind, umul, vmul, vth6, vth, tshift, gate, bias,
             c_src_stream, c_src_off, c_src_port, c_src_n, c_dst_pop, c_dst_off, c_dst_n, c_dst_port, c_view,
             c_woff, c_boff, sh_l, sh_r, c_plastic, c_mask, MASK, pr_off, pr_mant, pr_left, pr_right, pr_dec,
             pr_nf, pr_fcode, pr_fbits, pr_w, pr_traced, RY, RW, rec_pop, rec_port, rec_off, REC):
        """Every chip's steps t0..t1 (:func:`_chips`), the chips spread over numba's threads."""
        for c in prange(U.shape[0]):
            _chips(c, c + 1, t0, t1, narrow, U, V, O, BUF, W, S, pop_off, pop_kind, umul, vmul, vth6, vth,
                   tshift, gate, bias, c_src_stream, c_src_off, c_src_port, c_src_n, c_dst_pop, c_dst_off,
                   c_dst_n, c_dst_port, c_view, c_woff, c_boff, sh_l, sh_r, c_plastic, c_mask, MASK, pr_off,
                   pr_mant, pr_left, pr_right, pr_dec, pr_nf, pr_fcode, pr_fbits, pr_w, pr_traced, RY, RW,
                   rec_pop, rec_port, rec_off, REC)


def store_weights(c: Connection, out: np.ndarray, off: int, transpose: bool) -> None:
    """Write connection ``c``'s stored integer weights (:func:`fp.stored_weights`: rounded,
    clipped to 8 bits for the sign mode, low bits dropped) into ``out[off:]``, as W [post, pre]
    or, with ``transpose``, as W^T [pre, post]."""
    w = np.asarray(c.weights)
    w = w if w.dtype == np.float64 else w.astype(np.int64 if np.issubdtype(w.dtype, np.integer) else np.float64)
    mixed = int(c.sign_mode == "mixed")
    drop = 8 - c.num_weight_bits + mixed
    if drop < 0:
        import torch
        w = fp.stored_weights(torch.as_tensor(w).round().to(torch.int64), c.sign_mode, c.num_weight_bits).numpy()
        lo, hi, drop = -(2 ** 62), 2 ** 62, 0
    else:
        lo, hi = -(1 << 8) * mixed, (1 << 8) - 1
    _store(out, off, np.ascontiguousarray(w), lo, hi, drop, c.sign_mode == "inhibitory", transpose)


if numba is not None:
    @njit(cache=True, nogil=True)
    def _store(out, off, w, lo, hi, drop, neg, transpose):
        n_post, n_pre = w.shape
        for i in range(n_post):
            for j in range(n_pre):
                x = np.int64(np.rint(w[i, j]))          # torch's round: half to even
                x = -x if neg else x
                x = (min(max(x, lo), hi) >> drop) << drop
                out[off + (j * n_post + i if transpose else i * n_pre + j)] = -x if neg else x

    @njit(cache=True, nogil=True)
    def _unstore(W, off, transposed, out):
        n_chips, n_post, n_pre = out.shape
        for c in range(n_chips):
            if transposed:              # in 32 x 32 tiles (both sides stay in cache)
                for j0 in range(0, n_pre, 32):
                    for i0 in range(0, n_post, 32):
                        for i in range(i0, min(i0 + 32, n_post)):
                            for j in range(j0, min(j0 + 32, n_pre)):
                                out[c, i, j] = W[c, off + j * n_post + i]
            else:
                for i in range(n_post):
                    for j in range(n_pre):
                        out[c, i, j] = W[c, off + i * n_pre + j]


_COMPILE_S: list[float] = []


def compile_seconds() -> float:
    """Seconds the first kernel call of this process spent compiling (or loading from numba's
    cache); 0 before any call."""
    return _COMPILE_S[0] if _COMPILE_S else 0.0


def run_chips(circuits: list[Circuit], src: dict[str, np.ndarray], randoms, fwd: set,
              masks: dict[str, np.ndarray], bias: dict[str, np.ndarray], params: dict, exps: dict[str, np.ndarray],
              record: list[str], snapshot_every: int = 0, on_step=None,
              ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """The kernel's run of N ``circuits`` (one structure), given what :func:`emulate_chips`
    prepared: ``src`` {source: [chips, T, n]}, ``randoms`` an EngineRandoms (the streams are the
    same for every plastic connection), ``fwd`` the connections held as W^T [pre, post] (the
    others as W [post, pre]; stored weights: :func:`store_weights`), ``masks`` the sparse
    plastic connections' synapse masks laid out as their weights, ``bias`` {population: [chips,
    n]}, ``params`` {population: {du, dv, vth, third_shift, gate_lo: [chips, 1]}}, ``exps``
    {connection: [chips, 1]}.  Returns (weights per chip, records per chip) as emulate_chips."""
    ref = circuits[0]
    t_compile = time.perf_counter()
    if not _COMPILE_S:               # compile (or load numba's cache) of the helpers: timed apart
        _store(np.zeros(1, np.int16), 0, np.zeros((1, 1), np.int64), 0, 1, 0, False, False)
        _unstore(np.zeros((1, 1), np.int16), 0, False, np.zeros((1, 1, 1), np.int64))
    t_compile = time.perf_counter() - t_compile
    steps = next(iter(src.values())).shape[1]
    n_chips = next(iter(src.values())).shape[0]
    pops = list(ref.populations)
    pidx = {p.name: i for i, p in enumerate(pops)}
    pop_off = np.concatenate([[0], np.cumsum([p.n for p in pops])]).astype(np.int64)
    n_tot = int(pop_off[-1])
    names = list(src)
    s_off = dict(zip(names, np.concatenate([[0], np.cumsum([src[k].shape[2] for k in names])]).astype(int).tolist()))
    binary = all(src[k].dtype == np.int8 for k in names)
    S = np.concatenate([src[k] for k in names], axis=2)
    S = np.ascontiguousarray(S if binary else S.astype(np.int64))
    col = lambda key: np.ascontiguousarray(np.concatenate([params[p.name][key] for p in pops], axis=1))  # noqa: E731
    du, dv, vth = col("du"), col("dv"), col("vth")
    umul = np.ascontiguousarray(fp.DECAY_UNITY - (du + fp.DS_OFFSET))
    vmul = np.ascontiguousarray(fp.DECAY_UNITY - (dv + fp.DM_OFFSET))
    conns = list(ref.connections)
    n_src = [src[c.src].shape[2] if c.src in src else pops[pidx[c.src]].n for c in conns]
    n_dst = [pops[pidx[c.dst]].n for c in conns]
    # 0: M = W^T [src, dst] (columns of the senders added); 1: M = W [dst, src] (a transposed view learns on it)
    layout = [1 if c.plastic and c.view == "transposed" else 0 for c in conns]
    woff = np.concatenate([[0], np.cumsum([a * b for a, b in zip(n_src, n_dst)])]).astype(np.int64)
    boff = np.concatenate([[0], np.cumsum(n_dst)]).astype(np.int64)
    W = np.empty((n_chips, int(woff[-1])), np.int16)      # stored weights are 8-bit: |W| <= 256
    MASK = np.ones((n_chips, int(woff[-1]) if masks else 1), np.int8)
    for k, c in enumerate(conns):
        for i, ch in enumerate(circuits):
            store_weights(ch.connection(c.name), W[i], int(woff[k]), layout[k] == 0)
        if c.name in masks:
            MASK[:, woff[k]:woff[k + 1]] = masks[c.name].reshape(n_chips, -1)
    e = np.concatenate([exps[c.name] for c in conns], axis=1)
    sh_l, sh_r = np.ascontiguousarray(np.maximum(e, 0)), np.ascontiguousarray(np.maximum(-e, 0))
    prods = [(k, p) for k, c in enumerate(conns) if c.plastic for p in c.plastic]
    pr_off = np.zeros(len(conns) + 1, np.int64)
    for k, _ in prods:
        pr_off[k + 1] += 1
    pr_off = np.cumsum(pr_off)
    fcode = np.zeros((max(1, len(prods)), MAX_FACTORS), np.int64)
    fbits = np.zeros_like(fcode)
    for q, (_, p) in enumerate(prods):
        for i, f in enumerate(p.factors):
            fcode[q, i], fbits[q, i] = FACTORS.index(f), factor_bits(f)
    arr = lambda v: np.asarray(v, np.int64).reshape(-1)  # noqa: E731
    draws = [randoms.step() for _ in range(steps)] if randoms is not None else [(np.zeros(n_chips),) * 2] * steps
    RY = np.ascontiguousarray(np.asarray([d[0] for d in draws], np.float64).reshape(steps, n_chips))
    RW = np.ascontiguousarray(np.asarray([d[1] for d in draws], np.float64).reshape(steps, n_chips))
    rec_keys = [(k, *k.rpartition(":")[::2]) for k in record]
    rec_pop = arr([pidx[name] for _, _, name in rec_keys])
    rec_port = arr([1 if port == "err" else 0 for _, port, name in rec_keys])
    rec_off = np.concatenate([[0], np.cumsum([pops[pidx[n]].n for _, _, n in rec_keys])]).astype(np.int64)
    REC = np.zeros((n_chips, steps, max(1, int(rec_off[-1]))), np.int64)
    U = np.zeros((n_chips, n_tot), np.int64)
    V = np.zeros_like(U)
    O = np.zeros((len(PORTS), n_chips, n_tot), np.int64)
    BUF = np.zeros((n_chips, int(boff[-1])), np.int64)
    narrow = max(n_src, default=0) < 2 ** 16
    args = (narrow, U, V, O, BUF, W, S,
            pop_off, arr([KIND_CODE[p.kind] for p in pops]), umul, vmul, np.ascontiguousarray(vth << fp.VTH_SHIFT),
            np.ascontiguousarray(vth), col("third_shift"), col("gate_lo"),
            np.ascontiguousarray(np.concatenate([bias[p.name] for p in pops], axis=1).astype(np.int64)),
            np.array([c.src in src for c in conns]),
            arr([s_off[c.src] if c.src in src else pop_off[pidx[c.src]] for c in conns]),
            arr([0 if c.src in src else PORTS.index(c.src_port if c.src_port in PORTS else "s") for c in conns]),
            arr(n_src), arr([pidx[c.dst] for c in conns]), arr([pop_off[pidx[c.dst]] for c in conns]), arr(n_dst),
            arr([{"a": 0, "third": 1}.get(c.dst_port, 2) for c in conns]), arr(layout), woff, boff, sh_l, sh_r,
            np.array([bool(c.plastic) for c in conns]), np.array([c.name in masks for c in conns]), MASK,
            pr_off, arr([int(p.mant) for _, p in prods]), arr([7 + int(p.exp) for _, p in prods]),
            arr([engine_shift(p.factors) for _, p in prods]),
            arr([-1 if p.decimation is None else int(p.decimation) for _, p in prods]),
            arr([len(p.factors) for _, p in prods]), fcode, fbits,
            np.array([("w" in p.factors) for _, p in prods], np.bool_),
            np.array([bool(set(p.factors) & {"y1", "y2", "y3"}) for _, p in prods], np.bool_),
            RY, RW, rec_pop, rec_port, rec_off, REC)
    plastic = [k for k, c in enumerate(conns) if c.plastic]

    def weights_of(k: int) -> np.ndarray:        # [chips, post, pre] int64
        out = np.empty((n_chips, n_dst[k], n_src[k]), np.int64)
        _unstore(W, int(woff[k]), layout[k] == 0, out)
        return out

    # chunks end at snapshot steps (and every `chunk` steps when progress is reported)
    chunk = snapshot_every or (steps if on_step is None else 64)
    snaps: dict[str, list[np.ndarray]] = {conns[k].name: [] for k in plastic}
    t = 0
    while t < steps:
        t_end = min(steps, t + chunk)
        if not _COMPILE_S:
            t_c = time.perf_counter()
            _run(0, 0, *args)            # compile (or load the cache) outside the stepped run
            _COMPILE_S.append(t_compile + time.perf_counter() - t_c)
        _run(t, t_end, *args)
        if snapshot_every and t_end % snapshot_every == 0:
            for k in plastic:
                snaps[conns[k].name].append(weights_of(k))
        if on_step is not None:
            on_step(t_end)
        t = t_end
    final = {c.name: weights_of(k) for k, c in enumerate(conns)}
    per_chip_w = [{k: v[i] for k, v in final.items()} for i in range(n_chips)]
    per_chip_r = [{key: REC[i, :, rec_off[r]:rec_off[r + 1]].copy() for r, (key, _, _) in enumerate(rec_keys)}
                  for i in range(n_chips)]
    if snapshot_every:
        for i in range(n_chips):
            per_chip_r[i].update({f"w:{k}": np.asarray([w[i] for w in v]) for k, v in snaps.items()})
    return per_chip_w, per_chip_r

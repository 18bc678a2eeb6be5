/* Fused m-STPN recurrence steps on float32 CPU tensors, loaded by stpn/mstpn_kernel.py.
 *
 * All arrays are C-contiguous float32. With B sequences, N postsynaptic units and M
 * presynaptic inputs, the shapes are: F_in, F_out and A (B, N, M); zn and dzn (B, M);
 * u, h, gh and dpre (B, N); gamma, lam, dgamma and dlam (N, M); dzn_partial
 * (nthreads, B, M).
 *
 * The equations match torch_forward_step and torch_backward_step in stpn/mstpn_ops.py,
 * and the tests compare both. Denormals are flushed to zero in every worker thread: F decays
 * geometrically and would otherwise spend most of its life in the slow denormal range.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef __SSE__
/* Set the flush-to-zero and denormals-are-zero bits of MXCSR. */
#define FLUSH_DENORMALS() _mm_setcsr(_mm_getcsr() | 0x8040)
#else
#define FLUSH_DENORMALS() ((void)0)
#endif

/* Values of the mode argument of mstpn_forward_step. */
#define MODE_OUTPUT_ONLY 0
#define MODE_UPDATE 1
#define MODE_UPDATE_GIVEN_H 2

/* Round raw / step to the nearest integer (ties to even, like torch.round) times step,
 * then clip to [-df_max, df_max]. step == 0 means no discretisation. */
static inline float discretise(float raw, float step, float df_max)
{
    float q = step > 0.0f ? rintf(raw / step) * step : raw;
    q = q > df_max ? df_max : q;
    q = q < -df_max ? -df_max : q;
    return q;
}

/* Return max_j abs(a[j]). finite-math-only lets gcc vectorise the maximum. With a NaN
 * in a the result is unspecified, but then the parameters are already broken. */
__attribute__((optimize("finite-math-only"))) static float max_abs(const float *restrict a, int M)
{
    float largest = 0.0f;
    for (int j = 0; j < M; j++) {
        const float v = fabsf(a[j]);
        largest = v > largest ? v : largest;
    }
    return largest;
}

/* Return sum_j abs(a[j]), zero exactly when the whole row is zero. */
static float sum_abs(const float *restrict a, int M)
{
    float total = 0.0f;
    for (int j = 0; j < M; j++)
        total += fabsf(a[j]);
    return total;
}

/* Relative margin on bounds of abs(gamma * h * zn), covering the rounding of the product. */
#define BOUND_MARGIN 1.0001f

/* One row of the forward step. The restrict parameters let gcc vectorise without alias
 * checks, which gcc 12 does not do for restrict locals inside an OpenMP region.
 * bound is max|gamma_row| * max|zn|. When bound * |h| cannot reach half a step, every
 * update of the row rounds to zero, so only the decay is applied (nothing if F is 0).
 * known_zero: the caller knows that the F_in row is all zero, so it is not read.
 * Returns 1 when the F_out row is known to be all zero, else 0. */
static int forward_row(int M, const float *Fi, float *Fo, const float *restrict z,
                       const float *restrict g, const float *restrict l, float u_row,
                       float bound, float step, float df_max, int mode, int known_zero,
                       float *restrict h_row, float *restrict d, int32_t *restrict count)
{
    float hi;
    /* sum of abs(F_in), or negative while unknown */
    float f_size = known_zero ? 0.0f : -1.0f;
    if (mode == MODE_UPDATE_GIVEN_H) {
        hi = *h_row;
    } else {
        float y = 0.0f;
        if (!known_zero) {
            float size = 0.0f;
            for (int j = 0; j < M; j++) {
                y += Fi[j] * z[j];
                size += fabsf(Fi[j]);
            }
            f_size = size;
        }
        hi = tanhf(u_row + y);
        *h_row = hi;
    }
    if (mode == MODE_OUTPUT_ONLY)
        return f_size == 0.0f;

    const float reach = bound * fabsf(hi) * BOUND_MARGIN;
    if (step > 0.0f && reach <= 0.5f * step) {
        if (count)
            *count = 0;
        if (d)
            memset(d, 0, sizeof(float) * (size_t)M);
        if (f_size < 0.0f)
            f_size = sum_abs(Fi, M);
        if (f_size == 0.0f) {
            if (Fo != Fi)
                memset(Fo, 0, sizeof(float) * (size_t)M);
            return 1;
        }
#pragma GCC ivdep
        for (int j = 0; j < M; j++)
            Fo[j] = l[j] * Fi[j];
        return 0;
    }

    /* Fo may be Fi: each element is read before it is written, so ivdep is safe. */
    int nonzero = 0;
    if (d) {
#pragma GCC ivdep
        for (int j = 0; j < M; j++) {
            const float q = discretise(g[j] * (hi * z[j]), step, df_max);
            nonzero += q != 0.0f;
            d[j] = q;
            Fo[j] = l[j] * Fi[j] + q;
        }
    } else {
#pragma GCC ivdep
        for (int j = 0; j < M; j++) {
            const float q = discretise(g[j] * (hi * z[j]), step, df_max);
            nonzero += q != 0.0f;
            Fo[j] = l[j] * Fi[j] + q;
        }
    }
    if (count)
        *count = nonzero;
    return f_size == 0.0f && nonzero == 0;
}

/* Fill gamma_max (N) with max|gamma| per row and zn_max (B) with max|zn| per sequence. */
static void row_bounds(int B, int N, int M, const float *gamma, const float *zn,
                       float *gamma_max, float *zn_max)
{
#pragma omp for schedule(static)
    for (int k = 0; k < N + B; k++) {
        if (k < N)
            gamma_max[k] = max_abs(gamma + (int64_t)k * M, M);
        else
            zn_max[k - N] = max_abs(zn + (int64_t)(k - N) * M, M);
    }
}

/* One step forward. mode MODE_OUTPUT_ONLY: h = tanh(u + F_in zn), F untouched.
 * MODE_UPDATE: the same h, then F_out = lam * F_in + discretise(gamma * (h zn^T)).
 * MODE_UPDATE_GIVEN_H: the update only, with h read from h (used to recompute states).
 * F_out may be F_in (in place). counts (B*N int32, may be NULL) receives the number of
 * non-zero updates per row and df_out ((B, N, M), may be NULL) the applied updates.
 * zero_in and zero_out (B*N uint8, may be NULL, may be the same array) flag rows of F_in
 * known to be all zero, which are then not read, and receive the flags of F_out. A flag
 * of 0 only means "not known to be zero". bounds: scratch space of N + B floats. */
void mstpn_forward_step(int B, int N, int M, const float *F_in, float *F_out,
                        const float *zn, const float *u, const float *gamma, const float *lam,
                        float step, float df_max, int mode, float *h, int32_t *counts,
                        float *df_out, const uint8_t *zero_in, uint8_t *zero_out,
                        float *bounds, int nthreads)
{
    float *gamma_max = bounds, *zn_max = bounds + N;
#pragma omp parallel num_threads(nthreads)
    {
        FLUSH_DENORMALS();
        row_bounds(B, N, M, gamma, zn, gamma_max, zn_max);
#pragma omp for schedule(static)
        for (int row = 0; row < B * N; row++) {
            const int b = row / N, i = row % N;
            const int64_t offset = (int64_t)row * M;
            const int known_zero = zero_in ? zero_in[row] != 0 : 0;
            const int out_zero = forward_row(
                M, F_in + offset, F_out + offset, zn + (int64_t)b * M, gamma + (int64_t)i * M,
                lam + (int64_t)i * M, u ? u[row] : 0.0f, gamma_max[i] * zn_max[b], step,
                df_max, mode, known_zero, h + row, df_out ? df_out + offset : NULL,
                counts ? counts + row : NULL);
            if (zero_out)
                zero_out[row] = (uint8_t)out_zero;
        }
    }
}

/* One row of the backward step in general; returns dL/d(u) for the row. */
static float backward_row(int M, const float *restrict Fp, float *restrict Ar,
                          const float *restrict z, const float *restrict g,
                          const float *restrict l, float hi, float gh_row, float df_max,
                          float *restrict dg, float *restrict dl, float *restrict pz)
{
    float dh_update = 0.0f;
    for (int j = 0; j < M; j++) {
        const float raw = g[j] * (hi * z[j]);
        const float passed = fabsf(raw) <= df_max ? Ar[j] : 0.0f;
        dh_update += passed * g[j] * z[j];
    }
    const float dp = (gh_row + dh_update) * (1.0f - hi * hi);

    for (int j = 0; j < M; j++) {
        const float a = Ar[j];
        const float hz = hi * z[j];
        const float raw = g[j] * hz;
        const float passed = fabsf(raw) <= df_max ? a : 0.0f;
        dg[j] += passed * hz;
        dl[j] += a * Fp[j];
        pz[j] += passed * g[j] * hi + dp * Fp[j];
        Ar[j] = a * l[j] + dp * z[j];
    }
    return dp;
}

/* backward_row where the clip cannot be active anywhere in the row (every update passes
 * its gradient) and, if f_is_zero, F_prev is zero in the whole row. */
static float backward_row_unclipped(int M, const float *restrict Fp, float *restrict Ar,
                                    const float *restrict z, const float *restrict g,
                                    const float *restrict l, float hi, float gh_row,
                                    int f_is_zero, float *restrict dg, float *restrict dl,
                                    float *restrict pz)
{
    float dh_update = 0.0f;
    for (int j = 0; j < M; j++)
        dh_update += Ar[j] * g[j] * z[j];
    const float dp = (gh_row + dh_update) * (1.0f - hi * hi);

    if (f_is_zero) {
        for (int j = 0; j < M; j++) {
            const float a = Ar[j];
            dg[j] += a * (hi * z[j]);
            pz[j] += a * g[j] * hi;
            Ar[j] = a * l[j] + dp * z[j];
        }
    } else {
        for (int j = 0; j < M; j++) {
            const float a = Ar[j];
            dg[j] += a * (hi * z[j]);
            dl[j] += a * Fp[j];
            pz[j] += a * g[j] * hi + dp * Fp[j];
            Ar[j] = a * l[j] + dp * z[j];
        }
    }
    return dp;
}

/* One step backward through mstpn_forward_step with update != 0.
 * In: F_prev (the state entering the step), zn, h (the step's output), gamma, lam,
 * gh = dL/dh from outside the synapse state. In/out: A contains dL/dF_out on entry and
 * dL/dF_prev on return, and dgamma and dlam are accumulated into. Out: dpre = dL/d(u) and
 * dzn = dL/dzn through the synapse terms (the caller adds the W zn part).
 * The discretisation passes gradients straight through where abs(raw) <= df_max and
 * blocks them where the clip is active. Rows are split between threads so that each
 * thread owns its rows of dgamma and dlam; dzn is summed from per-thread partials.
 * zero_prev (B*N uint8, may be NULL) flags rows of F_prev known to be all zero.
 * bounds: scratch space of N + B floats. */
void mstpn_backward_step(int B, int N, int M, const float *F_prev, const float *zn,
                         const float *h, const float *gamma, const float *lam, float df_max,
                         float *A, const float *gh, float *dpre, float *dgamma, float *dlam,
                         float *dzn, float *dzn_partial, const uint8_t *zero_prev,
                         float *bounds, int nthreads)
{
    float *gamma_max = bounds, *zn_max = bounds + N;
    /* Threads that OpenMP does not start leave their slice untouched, so clear all. */
    memset(dzn_partial, 0, sizeof(float) * (size_t)nthreads * (size_t)B * (size_t)M);

#pragma omp parallel num_threads(nthreads)
    {
        FLUSH_DENORMALS();
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *part = dzn_partial + (int64_t)tid * B * M;
        row_bounds(B, N, M, gamma, zn, gamma_max, zn_max);

#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            for (int b = 0; b < B; b++) {
                const int row = b * N + i;
                const int64_t offset = (int64_t)row * M;
                const float *Fp = F_prev + offset;
                const float *z = zn + (int64_t)b * M;
                const float *g = gamma + (int64_t)i * M;
                const float *l = lam + (int64_t)i * M;
                const float reach = gamma_max[i] * zn_max[b] * fabsf(h[row]) * BOUND_MARGIN;
                if (reach <= df_max) {
                    const int f_is_zero =
                        (zero_prev && zero_prev[row]) || sum_abs(Fp, M) == 0.0f;
                    dpre[row] = backward_row_unclipped(
                        M, Fp, A + offset, z, g, l, h[row], gh[row], f_is_zero,
                        dgamma + (int64_t)i * M, dlam + (int64_t)i * M, part + (int64_t)b * M);
                } else {
                    dpre[row] = backward_row(M, Fp, A + offset, z, g, l, h[row], gh[row],
                                             df_max, dgamma + (int64_t)i * M,
                                             dlam + (int64_t)i * M, part + (int64_t)b * M);
                }
            }
        }
    }

    for (int64_t k = 0; k < (int64_t)B * M; k++) {
        float total = 0.0f;
        for (int t = 0; t < nthreads; t++)
            total += dzn_partial[(int64_t)t * B * M + k];
        dzn[k] = total;
    }
}

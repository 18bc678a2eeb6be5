/* Fused m-STPN recurrence steps on float32 CPU tensors, loaded by stpn/mstpn_kernel.py.
 *
 * Shapes (all arrays C-contiguous float32): B batch, N postsynaptic units, M presynaptic
 * inputs. F_in, F_out, A: (B, N, M); zn: (B, M); u, h, gh, dpre: (B, N); gamma, lam,
 * dgamma, dlam: (N, M); dzn: (B, M); dzn_partial: (nthreads, B, M).
 *
 * The equations match stpn/mstpn_ops.py (torch_forward_step, torch_backward_step); the
 * tests compare both. Denormals are flushed to zero in every worker thread: F decays
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

/* One row of the forward step; restrict on parameters lets gcc vectorise without alias
 * checks (restrict on locals inside an OpenMP region is not honoured by gcc 12). */
static void forward_row(int M, const float *Fi, float *Fo, const float *restrict z,
                        const float *restrict g, const float *restrict l, float u_row,
                        float step, float df_max, int mode, float *restrict h_row,
                        float *restrict d, int32_t *restrict count)
{
    float hi;
    if (mode == MODE_UPDATE_GIVEN_H) {
        hi = *h_row;
    } else {
        float y = 0.0f;
        for (int j = 0; j < M; j++)
            y += Fi[j] * z[j];
        hi = tanhf(u_row + y);
        *h_row = hi;
    }
    if (mode == MODE_OUTPUT_ONLY)
        return;

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
}

/* One step forward. mode MODE_OUTPUT_ONLY: h = tanh(u + F_in zn), F untouched.
 * MODE_UPDATE: the same h, then F_out = lam * F_in + discretise(gamma * (h zn^T)).
 * MODE_UPDATE_GIVEN_H: the update only, with h read from h (used to recompute states).
 * F_out may be F_in (in place). counts (B*N int32, may be NULL) receives the number of
 * non-zero updates per row and df_out ((B, N, M), may be NULL) the applied updates. */
void mstpn_forward_step(int B, int N, int M, const float *F_in, float *F_out,
                        const float *zn, const float *u, const float *gamma, const float *lam,
                        float step, float df_max, int mode, float *h, int32_t *counts,
                        float *df_out, int nthreads)
{
#pragma omp parallel num_threads(nthreads)
    {
        FLUSH_DENORMALS();
#pragma omp for schedule(static)
        for (int row = 0; row < B * N; row++) {
            const int b = row / N, i = row % N;
            const int64_t offset = (int64_t)row * M;
            forward_row(M, F_in + offset, F_out + offset, zn + (int64_t)b * M,
                        gamma + (int64_t)i * M, lam + (int64_t)i * M, u ? u[row] : 0.0f, step,
                        df_max, mode, h + row, df_out ? df_out + offset : NULL,
                        counts ? counts + row : NULL);
        }
    }
}

/* One row of the backward step; returns dL/d(u) for the row. */
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

/* One step backward through mstpn_forward_step with update != 0.
 * In: F_prev (the state entering the step), zn, h (the step's output), gamma, lam,
 * gh = dL/dh from outside the synapse state. In/out: A holds dL/dF_out on entry and
 * dL/dF_prev on return; dgamma and dlam are accumulated into. Out: dpre = dL/d(u) and
 * dzn = dL/dzn through the synapse terms (the caller adds the W zn part).
 * The discretisation passes gradients straight through where abs(raw) <= df_max and
 * blocks them where the clip is active. Rows are split between threads so that each
 * thread owns its rows of dgamma and dlam; dzn is summed from per-thread partials. */
void mstpn_backward_step(int B, int N, int M, const float *F_prev, const float *zn,
                         const float *h, const float *gamma, const float *lam, float df_max,
                         float *A, const float *gh, float *dpre, float *dgamma, float *dlam,
                         float *dzn, float *dzn_partial, int nthreads)
{
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

#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            for (int b = 0; b < B; b++) {
                const int row = b * N + i;
                const int64_t offset = (int64_t)row * M;
                dpre[row] = backward_row(M, F_prev + offset, A + offset, zn + (int64_t)b * M,
                                         gamma + (int64_t)i * M, lam + (int64_t)i * M, h[row],
                                         gh[row], df_max, dgamma + (int64_t)i * M,
                                         dlam + (int64_t)i * M, part + (int64_t)b * M);
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

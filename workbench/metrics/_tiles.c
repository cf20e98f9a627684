/*
 * Native passes over the float32 distance tiles of workbench.metrics.neighbors.
 *
 * After each matrix product the k-NN search and the radius counts read the tile once or twice:
 * a k-NN search keeps, per row (or per column), the entries below that row's current m-th
 * candidate; a radius count counts the entries below a per-row or per-column threshold and lists
 * the few entries inside an error band around it. In numpy each of those is several passes over
 * a 64 MiB tile (a mask, its non-zeros, gathers, a merge); here each is one pass, split over a
 * few threads, with the interpreter lock released. The Python wrapper
 * (workbench/metrics/tile_kernels.py) validates every array before calling; the lengths are
 * checked again here so that no call can read or write outside its buffers.
 *
 * Semantics are those of the numpy code they replace (neighbors.py keeps it as the fallback):
 * the same strict/non-strict comparisons on the same float32 values. Ties between equal
 * candidate values may be resolved differently, which the exact float64 re-ranking that follows
 * makes irrelevant.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

/* ------------------------------------------------------------------ thread helper */

typedef void (*range_fn)(void *ctx, Py_ssize_t start, Py_ssize_t stop, int part);

typedef struct {
    range_fn fn;
    void *ctx;
    Py_ssize_t start, stop;
    int part;
} range_job;

static void *run_range(void *arg) {
    range_job *job = (range_job *)arg;
    job->fn(job->ctx, job->start, job->stop, job->part);
    return NULL;
}

/* Run fn over [0, n) split into `threads` contiguous parts. With OpenMP the parts run on the
 * OpenMP pool (with GCC, the one PyTorch's products use: setup.py); else part 0 runs on the
 * calling thread and the others on POSIX threads (one that cannot be started runs on the
 * calling thread as well). */
static void parallel_ranges(range_fn fn, void *ctx, Py_ssize_t n, int threads) {
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > n) threads = n > 0 ? (int)n : 1;
    range_job jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS];
    for (int p = 0; p < threads; p++) {
        jobs[p].fn = fn;
        jobs[p].ctx = ctx;
        jobs[p].start = n * p / threads;
        jobs[p].stop = n * (p + 1) / threads;
        jobs[p].part = p;
        started[p] = 0;
    }
#ifdef _OPENMP
    (void)tids;
    (void)started;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int p = 0; p < threads; p++) run_range(&jobs[p]);
#else
    for (int p = 1; p < threads; p++)
        started[p] = pthread_create(&tids[p], NULL, run_range, &jobs[p]) == 0;
    run_range(&jobs[0]);
    for (int p = 1; p < threads; p++) {
        if (started[p])
            pthread_join(tids[p], NULL);
        else
            run_range(&jobs[p]);
    }
#endif
}

/* ------------------------------------------------------------------ vectors
 * GCC/Clang vector extensions, 8 floats per vector. The file is built twice on x86-64: as
 * _tiles (the SSE2 baseline) and as _tiles_avx2 (-mavx2), and tile_kernels.py loads the second
 * where the CPU has AVX2. -ffp-contract=off keeps every float operation the same in both. */

#if defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#define VL 8
typedef float vf __attribute__((vector_size(32)));
typedef int32_t vi __attribute__((vector_size(32)));
typedef float vf_u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t vi_u __attribute__((vector_size(32), aligned(4), may_alias));

static inline vf loadf(const float *p) { return *(const vf_u *)p; }
static inline vi loadi(const int32_t *p) { return *(const vi_u *)p; }
static inline void storei(int32_t *p, vi v) { *(vi_u *)p = v; }
static inline vf splat(float v) { return (vf){v, v, v, v, v, v, v, v}; }
static inline vf vmin(vf a, vf b) {
    vi take_a = a < b;
    return (vf)(((vi)a & take_a) | ((vi)b & ~take_a));
}

/* Is any lane of a comparison mask (lanes 0 or -1) set? */
static inline int any_set(vi m) {
#if defined(__AVX2__)
    __m256i x;
    memcpy(&x, &m, sizeof x);
    return !_mm256_testz_si256(x, x);
#elif defined(__SSE2__)
    __m128i lo, hi;
    memcpy(&lo, &m, sizeof lo);
    memcpy(&hi, (const char *)&m + sizeof lo, sizeof hi);
    return _mm_movemask_epi8(_mm_or_si128(lo, hi)) != 0;
#else
    int32_t r = 0;
    for (int k = 0; k < VL; k++) r |= m[k];
    return r != 0;
#endif
}

/* ------------------------------------------------------------------ running top-m */

/* The m kept values of a row form a binary max-heap (vals[0] is the largest; a row of m inf,
 * as rows start, is one). Replace the largest by (v, id), restore the heap, return the new
 * largest: about log2(m) comparisons instead of two scans of the row. */
static inline float heap_replace(float *vals, int64_t *ids, Py_ssize_t m, float v, int64_t id) {
    Py_ssize_t p = 0;
    for (;;) {
        Py_ssize_t child = 2 * p + 1;
        if (child >= m) break;
        if (child + 1 < m && vals[child + 1] > vals[child]) child++;
        if (!(vals[child] > v)) break;
        vals[p] = vals[child];
        ids[p] = ids[child];
        p = child;
    }
    vals[p] = v;
    ids[p] = id;
    return vals[0];
}

/* Masks of the 32 entries t[0..32) + add below the threshold row_thr (one value for all) or below
 * their own col_thr[0..32) (NULL: none), one vector per 8 entries; whether any is set. */
static inline int block_below(vi below[4], const float *t, vf add_v, vf row_thr, const float *col_thr) {
    vi any = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int b = 0; b < 4; b++) {
        vf v = loadf(t + b * VL) + add_v;
        below[b] = v < row_thr;
        if (col_thr) below[b] |= v < loadf(col_thr + b * VL);
        any |= below[b];
    }
    return any_set(any);
}

/* Column hits of a fused pass, inserted after it (rows and columns are heap rows of their own). */
typedef struct {
    int32_t col, row;
    float v;
} col_hit;

typedef struct {
    const float *tile;
    Py_ssize_t rows, cols;
    float *vals;
    int64_t *ids;
    float *worst;
    Py_ssize_t m;
    Py_ssize_t row_heap; /* heap row of tile row 0 (rows are merged when row_heap >= 0) */
    int64_t row_id0;     /* id of tile column 0 as a candidate of a row */
    Py_ssize_t col_heap; /* heap row of tile column 0 (columns are merged when col_heap >= 0) */
    int64_t col_id0;     /* id of tile row 0 as a candidate of a column */
    const float *row_add; /* added to every entry of tile row i (the row's squared norm), or NULL */
    col_hit *hits[MAX_THREADS];
    Py_ssize_t n_hits[MAX_THREADS];
    Py_ssize_t capacity;
} push_ctx;

static inline void push_row_entry(push_ctx *c, float *hv, int64_t *hi, float *w, float *admit, float bound, float v,
                                  Py_ssize_t j) {
    if (v < *admit) {
        *w = heap_replace(hv, hi, c->m, v, c->row_id0 + j);
        *admit = *w < bound ? *w : bound;
    }
}

#define MAX_GROUPS 512 /* lanes x chunks of an admission bound */

/* The k-th smallest (k >= 1) of v[0..n), reordering v (quickselect; no NaN in v). */
static float kth_smallest(float *v, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1, target = k - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        Py_ssize_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                float tmp = v[i];
                v[i] = v[j];
                v[j] = tmp;
                i++;
                j--;
            }
        }
        if (target <= j)
            hi = j;
        else if (target >= i)
            lo = i;
        else
            return v[target];
    }
    return v[target];
}

/* For a row whose heap is still empty: a value with at least m of the row's entries at or below
 * it, so every entry of the row's m smallest is below the returned bound. The row is cut into
 * about 4m disjoint groups (lane k of the vectors of chunk c) whose minima take one vector
 * minimum per 8 entries; the bound is just above the m-th smallest of those minima. Starting the
 * scan with it instead of inf spares the heap most insertions of a first tile (about
 * m ln(C/m) of them, each a mispredicted branch and a sift); INFINITY when the row is too short. */
static float admission_bound(const float *t, Py_ssize_t cols, Py_ssize_t m, float add) {
    Py_ssize_t chunks = (4 * m + VL - 1) / VL;
    if (chunks * VL > MAX_GROUPS) return INFINITY;
    Py_ssize_t per_chunk = cols / (chunks * VL); /* vectors per chunk */
    if (per_chunk < 1) return INFINITY;
    float mins[MAX_GROUPS];
    for (Py_ssize_t g = 0; g < chunks; g++) {
        const float *p = t + g * per_chunk * VL;
        vf lo = loadf(p);
        for (Py_ssize_t v = 1; v < per_chunk; v++) lo = vmin(lo, loadf(p + v * VL));
        for (int k = 0; k < VL; k++) mins[g * VL + k] = lo[k];
    }
    /* rounding is monotonic: the m-th smallest of fl(t + add) is at most fl(tau + add) */
    return nextafterf(kth_smallest(mins, chunks * VL, m) + add, INFINITY);
}

/* Rows: tile row i is heap row row_heap + i; its entries are candidates row_id0 + j. With
 * col_heap >= 0 as well (fused), entries below a column's m-th value (as it stood before the
 * pass) are listed for push_topk to merge into the column heaps after the pass. */
static void push_rows_range(void *arg, Py_ssize_t i0, Py_ssize_t i1, int part) {
    push_ctx *c = (push_ctx *)arg;
    const int fused = c->col_heap >= 0;
    const float *wc = fused ? c->worst + c->col_heap : c->worst;
    col_hit *hits = fused ? c->hits[part] : NULL;
    Py_ssize_t n_hits = 0;
    const Py_ssize_t cap = c->capacity;
    for (Py_ssize_t i = i0; i < i1; i++) {
        const float *t = c->tile + i * c->cols;
        const float add = c->row_add ? c->row_add[i] : 0.0f;
        const vf add_v = splat(add);
        Py_ssize_t h = c->row_heap + i;
        float *hv = c->vals + h * c->m;
        int64_t *hi = c->ids + h * c->m;
        float w = c->worst[h];
        /* admit: w, or below the admission bound of a row whose heap is empty */
        const float bound = isinf(w) && w > 0 ? admission_bound(t, c->cols, c->m, add) : INFINITY;
        float admit = w < bound ? w : bound;
        vf wv = splat(admit);
        Py_ssize_t j = 0;
        for (; j + 4 * VL <= c->cols; j += 4 * VL) {
            vi below[4];
            if (!block_below(below, t + j, add_v, wv, fused ? wc + j : NULL)) continue;
            for (int b = 0; b < 4; b++) {
                if (!any_set(below[b])) continue;
                for (int k = 0; k < VL; k++) {
                    Py_ssize_t jj = j + b * VL + k;
                    const float v = t[jj] + add;
                    push_row_entry(c, hv, hi, &w, &admit, bound, v, jj);
                    if (fused && v < wc[jj]) {
                        if (n_hits < cap) hits[n_hits] = (col_hit){(int32_t)jj, (int32_t)i, v};
                        n_hits++;
                    }
                }
            }
            wv = splat(admit);
        }
        for (; j < c->cols; j++) {
            const float v = t[j] + add;
            push_row_entry(c, hv, hi, &w, &admit, bound, v, j);
            if (fused && v < wc[j]) {
                if (n_hits < cap) hits[n_hits] = (col_hit){(int32_t)j, (int32_t)i, v};
                n_hits++;
            }
        }
        c->worst[h] = w;
    }
    if (fused) c->n_hits[part] = n_hits;
}

static inline void push_col(push_ctx *c, float *w, Py_ssize_t col, float v, int64_t id) {
    Py_ssize_t h = c->col_heap + col;
    w[col] = heap_replace(c->vals + h * c->m, c->ids + h * c->m, c->m, v, id);
}

/* Columns: tile column j is heap row col_heap + j; its entries are candidates col_id0 + i.
 * Each thread owns a range of columns and reads its stripe row by row. */
static void push_cols_range(void *arg, Py_ssize_t j0, Py_ssize_t j1, int part) {
    (void)part;
    push_ctx *c = (push_ctx *)arg;
    float *w = c->worst + c->col_heap;
    for (Py_ssize_t i = 0; i < c->rows; i++) {
        const float *t = c->tile + i * c->cols;
        const float add = c->row_add ? c->row_add[i] : 0.0f;
        const vf add_v = splat(add);
        int64_t id = c->col_id0 + i;
        Py_ssize_t j = j0;
        for (; j + 4 * VL <= j1; j += 4 * VL) {
            vi below[4];
            if (!block_below(below, t + j, add_v, splat(-INFINITY), w + j)) continue;
            for (int b = 0; b < 4; b++) {
                if (!any_set(below[b])) continue;
                for (int k = 0; k < VL; k++) {
                    Py_ssize_t jj = j + b * VL + k;
                    const float v = t[jj] + add;
                    if (v < w[jj]) push_col(c, w, jj, v, id);
                }
            }
        }
        for (; j < j1; j++) {
            const float v = t[j] + add;
            if (v < w[j]) push_col(c, w, j, v, id);
        }
    }
}

static int need_len(Py_buffer *b, Py_ssize_t bytes, const char *name) {
    if (b->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes; the call needs %zd", name, b->len, bytes);
        return 0;
    }
    return 1;
}

/* push_topk(tile, rows, cols, vals, ids, worst, m, row_heap, row_id0, col_heap, col_id0, threads)
 * row_heap / col_heap < 0: that orientation is not merged. Both >= 0: one fused pass (the two
 * heap ranges must not overlap). */
static PyObject *push_topk(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer tile, vals, ids, worst;
    Py_buffer add = {0};
    PyObject *add_obj;
    Py_ssize_t rows, cols, m, row_heap, col_heap;
    long long row_id0, col_id0;
    int threads;
    if (!PyArg_ParseTuple(args, "y*nnw*w*w*nnLnLOi", &tile, &rows, &cols, &vals, &ids, &worst, &m, &row_heap,
                          &row_id0, &col_heap, &col_id0, &add_obj, &threads))
        return NULL;
    PyObject *result = NULL;
    if (add_obj != Py_None && PyObject_GetBuffer(add_obj, &add, PyBUF_SIMPLE) < 0) goto done;
    if (add.obj != NULL && !need_len(&add, rows * 4, "row_add")) goto done;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (rows < 0 || cols < 0 || m < 1 || rows > INT32_MAX || cols > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "push_topk: bad tile shape or m < 1");
        goto done;
    }
    Py_ssize_t heap_rows = 0;
    if (row_heap >= 0) heap_rows = row_heap + rows;
    if (col_heap >= 0 && col_heap + cols > heap_rows) heap_rows = col_heap + cols;
    if (row_heap >= 0 && col_heap >= 0 && row_heap < col_heap + cols && col_heap < row_heap + rows) {
        PyErr_SetString(PyExc_ValueError, "push_topk: the row and column heap ranges overlap");
        goto done;
    }
    if (!need_len(&tile, rows * cols * 4, "tile") || !need_len(&vals, heap_rows * m * 4, "vals") ||
        !need_len(&ids, heap_rows * m * 8, "ids") || !need_len(&worst, heap_rows * 4, "worst"))
        goto done;
    push_ctx c;
    memset(&c, 0, sizeof c);
    c.tile = (const float *)tile.buf;
    c.rows = rows;
    c.cols = cols;
    c.vals = (float *)vals.buf;
    c.ids = (int64_t *)ids.buf;
    c.worst = (float *)worst.buf;
    c.m = m;
    c.row_heap = row_heap;
    c.row_id0 = (int64_t)row_id0;
    c.col_heap = col_heap;
    c.col_id0 = (int64_t)col_id0;
    c.row_add = add.obj ? (const float *)add.buf : NULL;
    int fused = row_heap >= 0 && col_heap >= 0;
    int parts = threads > rows ? (rows > 0 ? (int)rows : 1) : threads;
    Py_BEGIN_ALLOW_THREADS
    if (fused) {
        c.capacity = 16 * cols + 4096;
        for (int p = 0; p < parts && fused; p++) {
            c.hits[p] = (col_hit *)malloc((size_t)c.capacity * sizeof(col_hit));
            if (c.hits[p] == NULL) fused = 0;
        }
        if (!fused) { /* no room for the column hits: two passes */
            c.col_heap = -1;
            parallel_ranges(push_rows_range, &c, rows, threads);
            c.col_heap = col_heap;
            parallel_ranges(push_cols_range, &c, cols, threads);
        } else {
            parallel_ranges(push_rows_range, &c, rows, threads);
            int overflow = 0;
            for (int p = 0; p < parts; p++) overflow |= c.n_hits[p] > c.capacity;
            if (overflow) { /* the listed hits are incomplete: merge the columns by a pass of their own */
                parallel_ranges(push_cols_range, &c, cols, threads);
            } else {
                float *w = c.worst + col_heap;
                for (int p = 0; p < parts; p++)
                    for (Py_ssize_t e = 0; e < c.n_hits[p]; e++) {
                        col_hit hit = c.hits[p][e];
                        if (hit.v < w[hit.col]) push_col(&c, w, hit.col, hit.v, c.col_id0 + hit.row);
                    }
            }
        }
        for (int p = 0; p < parts; p++) free(c.hits[p]);
    } else if (row_heap >= 0) {
        parallel_ranges(push_rows_range, &c, rows, threads);
    } else if (col_heap >= 0) {
        parallel_ranges(push_cols_range, &c, cols, threads);
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&tile);
    PyBuffer_Release(&vals);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&worst);
    if (add.obj) PyBuffer_Release(&add);
    return result;
}

/* ------------------------------------------------------------------ radius counts */

/* One criterion of a count: entry (i, j) is surely inside when t < lo, in the band when
 * lo <= t <= hi, with lo/hi per row (by_row) or per column. */
typedef struct {
    int on;
    int by_row;
    const float *lo, *hi;
    int32_t *row_counts; /* (rows,) sure pairs per tile row */
    int32_t *col_counts; /* (threads, cols) sure pairs per tile column, one row per thread */
    int32_t *band_rows, *band_cols; /* (threads, capacity) band pairs per thread */
    Py_ssize_t capacity;
    Py_ssize_t band_found[MAX_THREADS];
} criterion;

typedef struct {
    const float *tile;
    Py_ssize_t rows, cols;
    const float *row_add; /* added to every entry of tile row i, or NULL */
    criterion crit[2];
} count_ctx;

static inline void record_band(criterion *cr, int part, Py_ssize_t i, Py_ssize_t j) {
    Py_ssize_t n = cr->band_found[part]++;
    if (n < cr->capacity) {
        cr->band_rows[part * cr->capacity + n] = (int32_t)i;
        cr->band_cols[part * cr->capacity + n] = (int32_t)j;
    }
}

/* One row of a criterion: sure counts (vectors of -1/0 subtracted) and band detection per 32
 * entries, then the band entries of a flagged block one by one. lo/hi are per column, or (by_row)
 * the row's own threshold splatted. */
static void count_row(criterion *cr, int part, Py_ssize_t i, const float *t, float add, Py_ssize_t cols,
                      int32_t *col_counts) {
    int by_row = cr->by_row;
    const vf add_v = splat(add);
    float lo_r = by_row ? cr->lo[i] : 0.0f, hi_r = by_row ? cr->hi[i] : 0.0f;
    vf lo_v = splat(lo_r), hi_v = splat(hi_r);
    vi row_acc = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t j = 0;
    for (; j + 4 * VL <= cols; j += 4 * VL) {
        vi band = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int b = 0; b < 4; b++) {
            Py_ssize_t jj = j + b * VL;
            vf v = loadf(t + jj) + add_v;
            if (!by_row) {
                lo_v = loadf(cr->lo + jj);
                hi_v = loadf(cr->hi + jj);
            }
            vi sure = v < lo_v;
            row_acc -= sure;
            storei(col_counts + jj, loadi(col_counts + jj) - sure);
            band |= (v <= hi_v) & ~sure;
        }
        if (!any_set(band)) continue;
        for (int k = 0; k < 4 * VL; k++) {
            float lo = by_row ? lo_r : cr->lo[j + k], hi = by_row ? hi_r : cr->hi[j + k];
            const float v = t[j + k] + add;
            if (v <= hi && !(v < lo)) record_band(cr, part, i, j + k);
        }
    }
    int32_t row_count = 0;
    for (int k = 0; k < VL; k++) row_count += row_acc[k];
    for (; j < cols; j++) {
        float lo = by_row ? lo_r : cr->lo[j], hi = by_row ? hi_r : cr->hi[j];
        const float v = t[j] + add;
        int sure = v < lo;
        row_count += sure;
        col_counts[j] += sure;
        if (v <= hi && !sure) record_band(cr, part, i, j);
    }
    cr->row_counts[i] = row_count;
}

static void count_range(void *arg, Py_ssize_t i0, Py_ssize_t i1, int part) {
    count_ctx *c = (count_ctx *)arg;
    for (int q = 0; q < 2; q++) c->crit[q].band_found[part] = 0;
    for (Py_ssize_t i = i0; i < i1; i++)
        for (int q = 0; q < 2; q++)
            if (c->crit[q].on)
                count_row(&c->crit[q], part, i, c->tile + i * c->cols, c->row_add ? c->row_add[i] : 0.0f, c->cols,
                          c->crit[q].col_counts + part * c->cols);
}

/* count_tile(tile, rows, cols, row_add, threads,
 *            by_row_0, lo_0, hi_0, row_counts_0, col_counts_0, band_rows_0, band_cols_0, capacity_0,
 *            by_row_1, ...) -> (found per thread for criterion 0, for criterion 1)
 * A criterion with by_row < 0 is off (its buffers are ignored). Counts are written, not added. */
static PyObject *count_tile(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer tile;
    Py_buffer add = {0};
    PyObject *add_obj;
    Py_ssize_t rows, cols;
    int threads;
    int by_row[2];
    Py_buffer lo[2], hi[2], rc[2], cc[2], br[2], bc[2];
    Py_ssize_t cap[2];
    if (!PyArg_ParseTuple(args, "y*nnOi" "iy*y*w*w*w*w*n" "iy*y*w*w*w*w*n", &tile, &rows, &cols, &add_obj, &threads,
                          &by_row[0], &lo[0], &hi[0], &rc[0], &cc[0], &br[0], &bc[0], &cap[0], &by_row[1],
                          &lo[1], &hi[1], &rc[1], &cc[1], &br[1], &bc[1], &cap[1]))
        return NULL;
    PyObject *result = NULL;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > rows) threads = rows > 0 ? (int)rows : 1;
    count_ctx c;
    c.tile = (const float *)tile.buf;
    c.rows = rows;
    c.cols = cols;
    c.row_add = NULL;
    if (rows < 0 || cols < 0 || rows > INT32_MAX || cols > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "count_tile: bad tile shape");
        goto done;
    }
    if (!need_len(&tile, rows * cols * 4, "tile")) goto done;
    if (add_obj != Py_None) {
        if (PyObject_GetBuffer(add_obj, &add, PyBUF_SIMPLE) < 0) goto done;
        if (!need_len(&add, rows * 4, "row_add")) goto done;
        c.row_add = (const float *)add.buf;
    }
    for (int q = 0; q < 2; q++) {
        criterion *cr = &c.crit[q];
        cr->on = by_row[q] >= 0;
        if (!cr->on) continue;
        cr->by_row = by_row[q] > 0;
        Py_ssize_t lines = cr->by_row ? rows : cols;
        if (cap[q] < 0 || !need_len(&lo[q], lines * 4, "lo") || !need_len(&hi[q], lines * 4, "hi") ||
            !need_len(&rc[q], rows * 4, "row_counts") || !need_len(&cc[q], threads * cols * 4, "col_counts") ||
            !need_len(&br[q], threads * cap[q] * 4, "band_rows") ||
            !need_len(&bc[q], threads * cap[q] * 4, "band_cols"))
            goto done;
        cr->lo = (const float *)lo[q].buf;
        cr->hi = (const float *)hi[q].buf;
        cr->row_counts = (int32_t *)rc[q].buf;
        cr->col_counts = (int32_t *)cc[q].buf;
        cr->band_rows = (int32_t *)br[q].buf;
        cr->band_cols = (int32_t *)bc[q].buf;
        cr->capacity = cap[q];
        memset(cr->col_counts, 0, (size_t)(threads * cols) * sizeof(int32_t));
    }
    Py_BEGIN_ALLOW_THREADS
    parallel_ranges(count_range, &c, rows, threads);
    Py_END_ALLOW_THREADS
    result = PyTuple_New(2);
    if (result == NULL) goto done;
    for (int q = 0; q < 2; q++) {
        PyObject *found = PyTuple_New(threads);
        if (found == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        for (int p = 0; p < threads; p++) {
            PyObject *v = PyLong_FromSsize_t(c.crit[q].on ? c.crit[q].band_found[p] : 0);
            if (v == NULL) {
                Py_DECREF(found);
                Py_CLEAR(result);
                goto done;
            }
            PyTuple_SET_ITEM(found, p, v);
        }
        PyTuple_SET_ITEM(result, q, found);
    }
done:
    PyBuffer_Release(&tile);
    if (add.obj) PyBuffer_Release(&add);
    for (int q = 0; q < 2; q++) {
        PyBuffer_Release(&lo[q]);
        PyBuffer_Release(&hi[q]);
        PyBuffer_Release(&rc[q]);
        PyBuffer_Release(&cc[q]);
        PyBuffer_Release(&br[q]);
        PyBuffer_Release(&bc[q]);
    }
    return result;
}

/* ------------------------------------------------------------------ centring */

typedef struct {
    const float *x;
    const float *centre;
    float *out;
    double *sq;
    Py_ssize_t dim;
} centre_ctx;

static void centre_range(void *arg, Py_ssize_t i0, Py_ssize_t i1, int part) {
    (void)part;
    centre_ctx *c = (centre_ctx *)arg;
    for (Py_ssize_t i = i0; i < i1; i++) {
        const float *x = c->x + i * c->dim;
        float *o = c->out + i * c->dim;
        double acc[4] = {0.0, 0.0, 0.0, 0.0};
        Py_ssize_t j = 0;
        for (; j + 4 <= c->dim; j += 4) {
            for (int k = 0; k < 4; k++) {
                float v = x[j + k] - c->centre[j + k];
                o[j + k] = v;
                acc[k] += (double)v * (double)v;
            }
        }
        for (; j < c->dim; j++) {
            float v = x[j] - c->centre[j];
            o[j] = v;
            acc[0] += (double)v * (double)v;
        }
        c->sq[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

/* centre_rows(x, n, dim, centre, out, sq, threads): out = x - centre (float32), sq = ||out||^2
 * summed in float64. */
static PyObject *centre_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer x, centre, out, sq;
    Py_ssize_t n, dim;
    int threads;
    if (!PyArg_ParseTuple(args, "y*nny*w*w*i", &x, &n, &dim, &centre, &out, &sq, &threads)) return NULL;
    PyObject *result = NULL;
    if (n < 0 || dim < 0) {
        PyErr_SetString(PyExc_ValueError, "centre_rows: negative size");
        goto done;
    }
    if (!need_len(&x, n * dim * 4, "x") || !need_len(&centre, dim * 4, "centre") ||
        !need_len(&out, n * dim * 4, "out") || !need_len(&sq, n * 8, "sq"))
        goto done;
    centre_ctx c = {(const float *)x.buf, (const float *)centre.buf, (float *)out.buf, (double *)sq.buf, dim};
    Py_BEGIN_ALLOW_THREADS
    parallel_ranges(centre_range, &c, n, threads);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&centre);
    PyBuffer_Release(&out);
    PyBuffer_Release(&sq);
    return result;
}

/* ------------------------------------------------------------------ exact pair distances */

typedef struct {
    const void *a, *b;
    int a64, b64; /* rows are float64 (else float32) */
    const int64_t *ia, *ib;
    Py_ssize_t na, nb, dim;
    double *out;
    int bad[MAX_THREADS];
} pairs_ctx;

/* sum((double)x_d - (double)y_d)^2 over d: the differences of float32 rows are exact in float64;
 * the squares and four running sums (elements d mod 4), added pairwise at the end, round as
 * float64 arithmetic does -- the same operations whatever the rows' dtypes. */
#define PAIR_SUM(X, Y)                                                  \
    do {                                                                \
        Py_ssize_t d = 0;                                               \
        for (; d + 4 <= dim; d += 4)                                    \
            for (int k = 0; k < 4; k++) {                               \
                double diff = (double)(X)[d + k] - (double)(Y)[d + k];  \
                acc[k] += diff * diff;                                  \
            }                                                           \
        for (; d < dim; d++) {                                          \
            double diff = (double)(X)[d] - (double)(Y)[d];              \
            acc[0] += diff * diff;                                      \
        }                                                               \
    } while (0)

static void pairs_range(void *arg, Py_ssize_t p0, Py_ssize_t p1, int part) {
    pairs_ctx *c = (pairs_ctx *)arg;
    const Py_ssize_t dim = c->dim;
    for (Py_ssize_t p = p0; p < p1; p++) {
        int64_t i = c->ia ? c->ia[p] : p, j = c->ib ? c->ib[p] : p;
        if (i < 0 || i >= c->na || j < 0 || j >= c->nb) {
            c->bad[part] = 1;
            c->out[p] = NAN;
            continue;
        }
        double acc[4] = {0.0, 0.0, 0.0, 0.0};
        if (c->a64 && c->b64)
            PAIR_SUM((const double *)c->a + i * dim, (const double *)c->b + j * dim);
        else if (c->a64)
            PAIR_SUM((const double *)c->a + i * dim, (const float *)c->b + j * dim);
        else if (c->b64)
            PAIR_SUM((const float *)c->a + i * dim, (const double *)c->b + j * dim);
        else
            PAIR_SUM((const float *)c->a + i * dim, (const float *)c->b + j * dim);
        c->out[p] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

/* pair_sq_dists(a, a64, na, b, b64, nb, dim, ia, ib, n, out, threads):
 * out[p] = ||a[ia[p]] - b[ib[p]]||^2 in float64 (rows float32, or float64 where a64 / b64);
 * ia / ib None: the identity. */
static PyObject *pair_sq_dists(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer a, b, out;
    Py_buffer ia = {0}, ib = {0};
    PyObject *ia_obj, *ib_obj;
    Py_ssize_t na, nb, dim, n;
    int a64, b64, threads;
    if (!PyArg_ParseTuple(args, "y*pny*pnnOOnw*i", &a, &a64, &na, &b, &b64, &nb, &dim, &ia_obj, &ib_obj, &n, &out,
                          &threads))
        return NULL;
    PyObject *result = NULL;
    pairs_ctx c;
    memset(&c, 0, sizeof c);
    if (ia_obj != Py_None && PyObject_GetBuffer(ia_obj, &ia, PyBUF_SIMPLE) < 0) goto done;
    if (ib_obj != Py_None && PyObject_GetBuffer(ib_obj, &ib, PyBUF_SIMPLE) < 0) goto done;
    if (na < 0 || nb < 0 || dim < 0 || n < 0) {
        PyErr_SetString(PyExc_ValueError, "pair_sq_dists: negative size");
        goto done;
    }
    if (!need_len(&a, na * dim * (a64 ? 8 : 4), "a") || !need_len(&b, nb * dim * (b64 ? 8 : 4), "b") ||
        !need_len(&out, n * 8, "out"))
        goto done;
    if ((ia.obj != NULL && !need_len(&ia, n * 8, "ia")) || (ib.obj != NULL && !need_len(&ib, n * 8, "ib")))
        goto done;
    if ((ia.obj == NULL && n > na) || (ib.obj == NULL && n > nb)) {
        PyErr_SetString(PyExc_ValueError, "pair_sq_dists: more pairs than rows without an index");
        goto done;
    }
    c.a = a.buf;
    c.b = b.buf;
    c.a64 = a64;
    c.b64 = b64;
    c.ia = ia.obj ? (const int64_t *)ia.buf : NULL;
    c.ib = ib.obj ? (const int64_t *)ib.buf : NULL;
    c.na = na;
    c.nb = nb;
    c.dim = dim;
    c.out = (double *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    parallel_ranges(pairs_range, &c, n, threads);
    Py_END_ALLOW_THREADS
    for (int p = 0; p < MAX_THREADS; p++)
        if (c.bad[p]) {
            PyErr_SetString(PyExc_IndexError, "pair_sq_dists: a row index is out of range");
            goto done;
        }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&out);
    if (ia.obj) PyBuffer_Release(&ia);
    if (ib.obj) PyBuffer_Release(&ib);
    return result;
}

/* Whether this CPU runs AVX2 code (the loader's choice between the two builds). */
static PyObject *cpu_has_avx2(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    return PyBool_FromLong(__builtin_cpu_supports("avx2"));
#else
    Py_RETURN_FALSE;
#endif
}

/* Whether the kernels were built with OpenMP (else POSIX threads). */
static PyObject *openmp(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
#ifdef _OPENMP
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"push_topk", push_topk, METH_VARARGS, "Merge a float32 tile into running top-m rows (see tile_kernels.py)."},
    {"count_tile", count_tile, METH_VARARGS, "Sure counts and band pairs of a float32 tile (see tile_kernels.py)."},
    {"centre_rows", centre_rows, METH_VARARGS, "Centre float32 rows and sum their squares in float64."},
    {"pair_sq_dists", pair_sq_dists, METH_VARARGS, "Float64 squared distances of float32/float64 row pairs."},
    {"cpu_has_avx2", cpu_has_avx2, METH_NOARGS, "Whether this CPU runs AVX2 code."},
    {"openmp", openmp, METH_NOARGS, "Whether the kernels were built with OpenMP (else POSIX threads)."},
    {NULL, NULL, 0, NULL},
};

#ifndef TILES_MODULE
#define TILES_MODULE _tiles
#endif
#define STR_(x) #x
#define STR(x) STR_(x)
#define INIT_(x) PyInit_##x
#define INIT(x) INIT_(x)

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, STR(TILES_MODULE), "Native passes over distance tiles.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC INIT(TILES_MODULE)(void) { return PyModule_Create(&module); }

/* LeNet's preprocessing after the decode, in two compiled calls.

   nn_server/networks/digits.py is the definition: ink map, crop, restroke and centring as
   ~35 NumPy/OpenCV calls on images of 28-256 px, where the calls' own overhead, not the
   pixels, is most of the cost. This file computes the same thing operation for operation,
   in the same float32/float64 arithmetic, so its digits are the Python path's digits
   (tests/test_ink_kernel.py checks them byte for byte). Python keeps the OpenCV steps that
   are not call-bound: the decode, the Gaussian smoothing and the resize.

   Built with -ffp-contract=off, so that no multiply-add is fused: NumPy rounds each one.
   No NumPy headers: arrays come in through the buffer protocol and leave as bytearrays. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The constants of digits.py and images.py; tests/test_ink_kernel.py compares them. */
#define INK_THRESHOLD 0.25f
#define FAINT 0.15 /* a double, as digits.FAINT is: the max below is taken in double */
#define BLOCKS 8
#define PAPER_FRACTION 0.25
#define GRAIN_QUANTILE 0.5
#define GRAIN_FACTOR 3.14
#define TOP_FRACTION 0.995
#define QUANTILE_SAMPLES 4096
#define TARGET_STROKE 0.11
#define THICK_STROKE 1.5
#define MAX_STROKE_WINDOW 31
#define CANVAS 28

/* What ink_box answers instead of a crop (digits.py raises BlankImage for each). */
#define NO_CONTRAST 1
#define NO_INK 2
/* ink_box's status for TOO_LARGE, raised as ValueError and never returned to Python. */
#define OVERFLOWS 3

/* The ValueErrors, which digits.py raises with the same words. */
#define NOT_FINITE "the image holds NaN or infinite pixel values"
#define TOO_LARGE "the image's pixel values are too large: its ink map overflows float32"
/* The longest side accepted. The pipeline sends at most 256 (images.WORK_SIDE); the bound
   keeps every count below far inside Py_ssize_t and the int window sizes, which are
   derived from the sides, inside int. */
#define MAX_SIDE 65536
#define DIGITS(n) #n
#define SPELLED(n) DIGITS(n)
#define BAD_ARGUMENT \
    "expected a C-contiguous float32 image of h x w, each side 1 to " SPELLED(MAX_SIDE)

/* Rows processed side by side along a row: eight independent lanes the compiler can put
   in one vector, instead of one long chain of dependent steps. */
#define LANES 8

/* ---------------------------------------------------------------- scratch memory */

/* Each buffer of a call has a slot, kept per thread and grown when an image needs more.
   Allocating afresh costs more than the pixels: buffers of 100-800 KB come from mmap, and
   every page of them faults on first touch. */
enum {
    S_INK, S_WORK, S_SCRATCH, S_KEYS, S_EDGE, S_COLUMNS, S_BOX, S_PADDED,
    S_MORPH_LINES, S_MORPH_A, S_LINE, S_FWD, S_BWD, S_OUT, S_SUMS, S_ACC, S_CENTRE,
    S_SAMPLES, S_SLICES,
    SLOTS
};
static _Thread_local struct {
    void *memory;
    size_t bytes;
} slots[SLOTS];

/* Room for `count` items of `size` bytes in slot `which`, or NULL (MemoryError) when out of
   memory or when count * size would not fit in a size_t: a product that wrapped around
   would hand back a buffer smaller than the loops that fill it. */
static void *slot(int which, size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    size_t bytes = count * size;
    if (slots[which].bytes < bytes) {
        free(slots[which].memory);
        slots[which].memory = malloc(bytes);
        slots[which].bytes = slots[which].memory ? bytes : 0;
    }
    return slots[which].memory;
}

/* 1 for NaN or an infinity (all exponent bits set), else 0. Integer operations on the
   bits, which the compiler vectorises (a float sum would not be, without fast-math). */
static inline uint32_t not_finite(float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits); /* not a cast: strict aliasing */
    return (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
}

/* ---------------------------------------------------------------- min and max filters */

typedef enum { ERODE, DILATE } Morph;

static inline float pick(Morph op, float a, float b) {
    return op == ERODE ? (a < b ? a : b) : (a > b ? a : b);
}

/* A running min (max) over windows of `size` along a line, by van Herk / Gil-Werman:
   three comparisons per value whatever the window. A "value" is a row of `lanes` floats,
   so the same loops run down all columns at once (lanes w) or along LANES interleaved
   rows. `line` holds n + size - 1 values, the input with its border already added;
   `fwd` and `bwd` are scratch of the same length; out gets n values. */
static void window_lines(Morph op, const float *line, Py_ssize_t n, int size,
                         Py_ssize_t lanes, float *fwd, float *bwd, float *out) {
    Py_ssize_t len = n + size - 1;
    for (Py_ssize_t start = 0; start < len; start += size) {
        Py_ssize_t end = start + size < len ? start + size : len;
        memcpy(fwd + start * lanes, line + start * lanes, sizeof(float) * lanes);
        for (Py_ssize_t i = start + 1; i < end; i++) {
            const float *prev = fwd + (i - 1) * lanes, *cur = line + i * lanes;
            float *dst = fwd + i * lanes;
            for (Py_ssize_t k = 0; k < lanes; k++) dst[k] = pick(op, prev[k], cur[k]);
        }
        memcpy(bwd + (end - 1) * lanes, line + (end - 1) * lanes, sizeof(float) * lanes);
        for (Py_ssize_t i = end - 2; i >= start; i--) {
            const float *next = bwd + (i + 1) * lanes, *cur = line + i * lanes;
            float *dst = bwd + i * lanes;
            for (Py_ssize_t k = 0; k < lanes; k++) dst[k] = pick(op, next[k], cur[k]);
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const float *b = bwd + i * lanes, *f = fwd + (i + size - 1) * lanes;
        float *dst = out + i * lanes;
        for (Py_ssize_t k = 0; k < lanes; k++) dst[k] = pick(op, b[k], f[k]);
    }
}

/* Row y of an image with `r` extra rows above and below: replicated edge rows, or NULL
   (neutral) beyond the image. */
static inline const float *row_or_edge(const float *image, Py_ssize_t h, Py_ssize_t w,
                                       Py_ssize_t y, int replicate) {
    if (y < 0 || y >= h) {
        if (!replicate) return NULL;
        y = y < 0 ? 0 : h - 1;
    }
    return image + y * w;
}

/* lines[i * LANES + k] = position i - r of row y0 + k of image (h x w), for i up to
   w + 2r: LANES rows side by side, each with r values of border at either end
   (replicated, or `neutral`). Rows past the bottom repeat the last; callers do not
   write them back. */
static void interleave(const float *image, Py_ssize_t h, Py_ssize_t w, Py_ssize_t y0, int r,
                       int replicate, float neutral, float *lines) {
    const float *rows[LANES];
    for (int k = 0; k < LANES; k++) rows[k] = image + (y0 + k < h ? y0 + k : h - 1) * w;
    for (int i = 0; i < r; i++) {
        float *before = lines + i * LANES, *after = lines + (w + r + i) * LANES;
        for (int k = 0; k < LANES; k++) {
            before[k] = replicate ? rows[k][0] : neutral;
            after[k] = replicate ? rows[k][w - 1] : neutral;
        }
    }
    for (Py_ssize_t x = 0; x < w; x++) {
        float *at = lines + (x + r) * LANES;
        for (int k = 0; k < LANES; k++) at[k] = rows[k][x];
    }
}

/* cv2.erode / cv2.dilate with a size x size square. replicate: BORDER_REPLICATE (the
   background estimate); otherwise OpenCV's default border, which is neutral (a window
   simply ignores what lies outside the image). The square is separable, and a min is
   exact in any order: down the columns, then along the rows, LANES rows at a time. */
static int morph(Morph op, const float *src, Py_ssize_t h, Py_ssize_t w, int size,
                 int replicate, float *dst) {
    int r = size / 2;
    float neutral = op == ERODE ? INFINITY : -INFINITY;
    Py_ssize_t col_len = h + size - 1, row_len = w + size - 1;
    Py_ssize_t longest = (col_len * w > row_len * LANES ? col_len * w : row_len * LANES);
    float *lines = slot(S_MORPH_LINES, longest, sizeof(float));
    float *fwd = slot(S_FWD, longest, sizeof(float)), *bwd = slot(S_BWD, longest, sizeof(float));
    float *columns = slot(S_MORPH_A, h * w, sizeof(float));
    float *out = slot(S_OUT, w * LANES, sizeof(float));
    if (!lines || !fwd || !bwd || !columns || !out) return -1;

    for (Py_ssize_t i = 0; i < col_len; i++) {
        const float *from = row_or_edge(src, h, w, i - r, replicate);
        if (from)
            memcpy(lines + i * w, from, sizeof(float) * w);
        else
            for (Py_ssize_t x = 0; x < w; x++) lines[i * w + x] = neutral;
    }
    window_lines(op, lines, h, size, w, fwd, bwd, columns);

    for (Py_ssize_t y0 = 0; y0 < h; y0 += LANES) {
        /* lines[i * LANES + k]: position i - r of row y0 + k, bordered (rows past the
           bottom repeat the last, and are not written back). */
        interleave(columns, h, w, y0, r, replicate, neutral, lines);
        window_lines(op, lines, w, size, LANES, fwd, bwd, out);
        for (int k = 0; k < LANES && y0 + k < h; k++)
            for (Py_ssize_t x = 0; x < w; x++) dst[(y0 + k) * w + x] = out[x * LANES + k];
    }
    return 0;
}

/* ---------------------------------------------------------------- box blur */

/* cv2.blur (normalised box, BORDER_REPLICATE) on float32, in OpenCV's own arithmetic: a
   running float64 sum along each row (new - old added to it), then a running sum of
   those down the columns, times 1 / size^2. */
static int box_blur(const float *src, Py_ssize_t h, Py_ssize_t w, int size, float *dst) {
    int r = size / 2;
    Py_ssize_t len = w + size - 1;
    double scale = 1.0 / ((double)size * size);
    float *lines = slot(S_LINE, len * LANES, sizeof(float));
    double *sums = slot(S_SUMS, h * w, sizeof(double));
    double *acc = slot(S_ACC, w > LANES ? w : LANES, sizeof(double));
    if (!lines || !sums || !acc) return -1;

    for (Py_ssize_t y0 = 0; y0 < h; y0 += LANES) {
        interleave(src, h, w, y0, r, 1, 0.0f, lines);
        double run[LANES] = {0};
        for (int i = 0; i < size; i++)
            for (int k = 0; k < LANES; k++) run[k] += (double)lines[i * LANES + k];
        for (int k = 0; k < LANES && y0 + k < h; k++) sums[(y0 + k) * w] = run[k];
        for (Py_ssize_t x = 0; x + 1 < w; x++) {
            const float *add = lines + (x + size) * LANES, *drop = lines + x * LANES;
            for (int k = 0; k < LANES; k++) run[k] += (double)add[k] - (double)drop[k];
            for (int k = 0; k < LANES && y0 + k < h; k++) sums[(y0 + k) * w + x + 1] = run[k];
        }
    }
#define ROW(i) (sums + ((i) - r < 0 ? 0 : (i) - r >= h ? h - 1 : (i) - r) * w)
    for (Py_ssize_t x = 0; x < w; x++) acc[x] = 0;
    for (int i = 0; i < size - 1; i++) {
        const double *p = ROW(i);
        for (Py_ssize_t x = 0; x < w; x++) acc[x] += p[x];
    }
    for (Py_ssize_t y = 0; y < h; y++) {
        const double *add = ROW(y + size - 1), *drop = ROW(y);
        float *d = dst + y * w;
        for (Py_ssize_t x = 0; x < w; x++) {
            double s0 = acc[x] + add[x];
            d[x] = (float)(s0 * scale);
            acc[x] = s0 - drop[x];
        }
    }
#undef ROW
    return 0;
}

/* ---------------------------------------------------------------- quantiles */

/* The k-th smallest of values[0..n) (Wirth's selection; reorders values): what
   np.partition puts at index k. */
static float select_rank(float *values, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = values[k];
        Py_ssize_t i = lo, j = hi;
        do {
            while (values[i] < pivot) i++;
            while (pivot < values[j]) j--;
            if (i <= j) {
                float t = values[i];
                values[i++] = values[j];
                values[j--] = t;
            }
        } while (i <= j);
        if (j < k) lo = i;
        if (k < i) hi = j;
    }
    return values[k];
}

#define BUCKETS 1024

/* images.quantiles: the values at int(f * m) of the m <= ~QUANTILE_SAMPLES evenly spread
   samples of values[0..n). A selection over all m mispredicts a branch on nearly every
   noisy pixel, so the samples are first counted into BUCKETS equal slices of their range
   (a monotonic map: rank r lies in the slice where the counts pass r), and only that
   slice's samples are selected from. `scratch` has room for n floats. */
static int quantiles(const float *values, Py_ssize_t n, const double *fractions, int count,
                     float *scratch, double *out) {
    Py_ssize_t step = n > 2 * QUANTILE_SAMPLES ? n / QUANTILE_SAMPLES : 1;
    Py_ssize_t m = (n + step - 1) / step;
    float *samples = slot(S_SAMPLES, m, sizeof(float));
    uint16_t *slices = slot(S_SLICES, m, sizeof(uint16_t));
    if (!samples || !slices) return -1;
    for (Py_ssize_t j = 0; j < m; j++) samples[j] = values[j * step];

    float lows[LANES], highs[LANES];
    for (int k = 0; k < LANES; k++) lows[k] = highs[k] = samples[0];
    Py_ssize_t j = 0;
    for (; j + LANES <= m; j += LANES)
        for (int k = 0; k < LANES; k++) {
            lows[k] = samples[j + k] < lows[k] ? samples[j + k] : lows[k];
            highs[k] = samples[j + k] > highs[k] ? samples[j + k] : highs[k];
        }
    for (; j < m; j++) {
        lows[0] = samples[j] < lows[0] ? samples[j] : lows[0];
        highs[0] = samples[j] > highs[0] ? samples[j] : highs[0];
    }
    float lo = lows[0], hi = highs[0];
    for (int k = 1; k < LANES; k++) {
        lo = lows[k] < lo ? lows[k] : lo;
        hi = highs[k] > hi ? highs[k] : hi;
    }
    if (!(lo < hi)) { /* one level throughout (or NaN, which images never have) */
        for (int q = 0; q < count; q++) out[q] = (double)lo;
        return 0;
    }
    /* Any slicing that keeps the order gives the same ranks. With a finite, non-zero gain
       every at is finite and >= 0 (samples are finite, and lo <= s <= hi), so the cast is
       defined. The gain is 0 when hi - lo overflows (-3e38 to 3e38) and infinite when the
       range is too narrow (0 to 1e-40): then (s - lo) * gain would be inf * 0 or 0 * inf,
       NaN, whose conversion to an integer is undefined. All the samples then go to one
       slice, and the selection does all the work: slower, for images no camera makes. */
    float gain = (float)BUCKETS / (hi - lo);
    if (gain > 0 && isfinite(gain)) {
        for (j = 0; j < m; j++) {
            float at = (samples[j] - lo) * gain;
            slices[j] = at >= BUCKETS - 1 ? BUCKETS - 1 : (uint16_t)at;
        }
    } else {
        memset(slices, 0, sizeof(uint16_t) * m);
    }
    /* Four interleaved tallies: on a flat page one counter would otherwise be incremented
       in a chain of dependent stores. */
    uint32_t tally[4][BUCKETS];
    memset(tally, 0, sizeof tally);
    for (j = 0; j + 4 <= m; j += 4) {
        tally[0][slices[j]]++;
        tally[1][slices[j + 1]]++;
        tally[2][slices[j + 2]]++;
        tally[3][slices[j + 3]]++;
    }
    for (; j < m; j++) tally[0][slices[j]]++;
    for (int q = 0; q < count; q++) {
        Py_ssize_t rank = (Py_ssize_t)(fractions[q] * (double)m);
        if (rank > m - 1) rank = m - 1;
        Py_ssize_t slice = 0, below = 0;
        for (;; slice++) {
            Py_ssize_t here = tally[0][slice] + tally[1][slice] + tally[2][slice] +
                              tally[3][slice];
            if (rank < below + here) break;
            below += here;
        }
        Py_ssize_t kept = 0;
        for (j = 0; j < m; j++) {
            scratch[kept] = samples[j];
            kept += slices[j] == slice;
        }
        out[q] = (double)select_rank(scratch, kept, rank - below);
    }
    return 0;
}

/* ---------------------------------------------------------------- the two steps */

typedef struct {
    float *pixels; /* a slot: valid until the next call on this thread */
    Py_ssize_t h, w;
} Box;

/* digits.ink_map, crop_to_ink and restroke. Returns 0 with *box filled, NO_CONTRAST,
   NO_INK, OVERFLOWS, or -1 when out of memory. */
static int ink_box(const float *gray, Py_ssize_t h, Py_ssize_t w, Box *box) {
    Py_ssize_t n = h * w, border = 2 * (h + w); /* border > n for slivers like 1 x 256 */
    float *ink = slot(S_INK, n, sizeof(float)), *work = slot(S_WORK, n, sizeof(float));
    float *scratch = slot(S_SCRATCH, n, sizeof(float));
    float *keys = slot(S_KEYS, n > border ? n : border, sizeof(float));
    float *edge = slot(S_EDGE, border, sizeof(float));
    Py_ssize_t *columns = slot(S_COLUMNS, w, sizeof(Py_ssize_t));
    if (!ink || !work || !scratch || !keys || !edge || !columns) return -1;

    /* Polarity from the border's median (images.border_level). */
    Py_ssize_t b = 0;
    for (Py_ssize_t x = 0; x < w; x++) edge[b++] = gray[x];
    for (Py_ssize_t x = 0; x < w; x++) edge[b++] = gray[(h - 1) * w + x];
    for (Py_ssize_t y = 0; y < h; y++) edge[b++] = gray[y * w];
    for (Py_ssize_t y = 0; y < h; y++) edge[b++] = gray[y * w + w - 1];
    double half = 0.5, level;
    if (quantiles(edge, b, &half, 1, keys, &level) < 0) return -1;
    int invert = level > 0.5;
    for (Py_ssize_t i = 0; i < n; i++) ink[i] = invert ? 1.0f - gray[i] : gray[i];

    /* Minus the paper under it (digits.background). */
    Py_ssize_t shorter = h < w ? h : w;
    int size = (int)(3 * (shorter / BLOCKS));
    size = (size < 3 ? 3 : size) | 1;
    if (morph(ERODE, ink, h, w, size, 1, work) < 0) return -1;
    if (box_blur(work, h, w, size, scratch) < 0) return -1;
    /* Finite pixels near float32's limits (ink at -3e38 on paper at 3e38) overflow here,
       and an infinity would go on to make NaN (inf - inf) and convert it to an integer.
       digits.ink_map refuses the same images at the same step. Tested in this pass, which
       loads each value anyway. */
    uint32_t overflow = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        float v = ink[i] - scratch[i];
        overflow |= not_finite(v);
        ink[i] = v;
    }
    if (overflow) return OVERFLOWS;

    /* digits.paper_grain: |differences| along the border, in NumPy's order (top row,
       bottom row, left column, right column). */
    Py_ssize_t d = 0;
    for (Py_ssize_t x = 0; x + 1 < w; x++) edge[d++] = fabsf(ink[x + 1] - ink[x]);
    const float *last = ink + (h - 1) * w;
    for (Py_ssize_t x = 0; x + 1 < w; x++) edge[d++] = fabsf(last[x + 1] - last[x]);
    for (Py_ssize_t y = 0; y + 1 < h; y++) edge[d++] = fabsf(ink[(y + 1) * w] - ink[y * w]);
    for (Py_ssize_t y = 0; y + 1 < h; y++)
        edge[d++] = fabsf(ink[(y + 1) * w + w - 1] - ink[y * w + w - 1]);
    double grain = 0.0, grain_fraction = GRAIN_QUANTILE;
    if (d > 0 && quantiles(edge, d, &grain_fraction, 1, keys, &grain) < 0) return -1;

    double fractions[2] = {PAPER_FRACTION, TOP_FRACTION}, levels[2];
    if (quantiles(ink, n, fractions, 2, keys, levels) < 0) return -1;
    double paper = levels[0], top = levels[1] - paper;
    if (top < 0.05) return NO_CONTRAST;
    float offset = (float)paper, gain = (float)(1.0 / top);
    /* Python's max(FAINT, ...) in double, then OpenCV's threshold, which takes it as float. */
    double least = GRAIN_FACTOR * grain / top;
    float faint = (float)(least > FAINT ? least : FAINT);
    for (Py_ssize_t i = 0; i < n; i++) {
        float v = ink[i] - offset;
        v = v * gain;
        v = v > faint ? v : 0.0f;     /* THRESH_TOZERO */
        ink[i] = v > 1.0f ? 1.0f : v; /* THRESH_TRUNC */
    }

    /* The tight box around the ink, ignoring specks in otherwise empty rows/columns. */
    Py_ssize_t row_min = w / 200 > 1 ? w / 200 : 1, col_min = h / 200 > 1 ? h / 200 : 1;
    Py_ssize_t top_row = -1, bottom_row = -1, left = -1, right = -1;
    memset(columns, 0, sizeof(Py_ssize_t) * w);
    for (Py_ssize_t y = 0; y < h; y++) {
        Py_ssize_t count = 0;
        for (Py_ssize_t x = 0; x < w; x++) {
            int on = ink[y * w + x] > INK_THRESHOLD;
            count += on;
            columns[x] += on;
        }
        if (count >= row_min) {
            if (top_row < 0) top_row = y;
            bottom_row = y;
        }
    }
    for (Py_ssize_t x = 0; x < w; x++) {
        if (columns[x] >= col_min) {
            if (left < 0) left = x;
            right = x;
        }
    }
    if (top_row < 0 || left < 0) return NO_INK;
    Py_ssize_t ch = bottom_row - top_row + 1, cw = right - left + 1;
    for (Py_ssize_t y = 0; y < ch; y++)
        memcpy(work + y * cw, ink + (top_row + y) * w + left, sizeof(float) * cw);

    /* Strokes towards MNIST's width (digits.restroke). */
    Py_ssize_t side = ch > cw ? ch : cw, inked = 0;
    for (Py_ssize_t i = 0; i < ch * cw; i++) inked += work[i] > INK_THRESHOLD;
    double length = 2.5 * (double)side;
    double width = (double)inked / length;
    double target = TARGET_STROKE * (double)side;
    int radius;
    Morph op = ERODE;
    if (width > THICK_STROKE * target) {
        radius = (int)((width - THICK_STROKE * target) / 2);
    } else {
        radius = (int)((target - width) / 2);
        op = DILATE;
    }
    int window = 2 * radius + 1 < MAX_STROKE_WINDOW ? 2 * radius + 1 : MAX_STROKE_WINDOW;
    Py_ssize_t pad = op == DILATE && radius >= 1 ? radius : 0;
    box->h = ch + 2 * pad;
    box->w = cw + 2 * pad;
    box->pixels = slot(S_BOX, box->h * box->w, sizeof(float));
    if (!box->pixels) return -1;
    if (radius < 1) {
        memcpy(box->pixels, work, sizeof(float) * ch * cw);
        return 0;
    }
    float *from = work;
    if (pad) { /* dilation is padded first, so the tight crop does not clip it */
        from = slot(S_PADDED, box->h * box->w, sizeof(float));
        if (!from) return -1;
        memset(from, 0, sizeof(float) * box->h * box->w);
        for (Py_ssize_t y = 0; y < ch; y++)
            memcpy(from + (y + pad) * box->w + pad, work + y * cw, sizeof(float) * cw);
    }
    return morph(op, from, box->h, box->w, window, 0, box->pixels);
}

/* digits.to_mnist's last steps and digits.center: clip to 0..1, scale the brightest pixel
   to 1, place by centre of mass (cv2.moments' float64 sums, Python's round half to even)
   in 28 x 28, and quantise as (v * 255 + 0.5) -> uint8. */
static int centre(const float *digit, Py_ssize_t h, Py_ssize_t w, unsigned char *out) {
    Py_ssize_t n = h * w;
    float *v = slot(S_CENTRE, n, sizeof(float));
    if (!v) return -1;
    float canvas[CANVAS * CANVAS] = {0};
    float brightest = 0.0f;
    for (Py_ssize_t i = 0; i < n; i++) {
        float p = digit[i] < 0.0f ? 0.0f : digit[i] > 1.0f ? 1.0f : digit[i];
        v[i] = p;
        brightest = p > brightest ? p : brightest;
    }
    if (brightest > 0)
        for (Py_ssize_t i = 0; i < n; i++) v[i] = v[i] / brightest;
    double m00 = 0, m10 = 0, m01 = 0;
    for (Py_ssize_t y = 0; y < h; y++) {
        double x0 = 0, x1 = 0;
        for (Py_ssize_t x = 0; x < w; x++) {
            double p = v[y * w + x];
            x0 += p;
            x1 += (double)x * p;
        }
        m01 += (double)y * x0;
        m10 += x1;
        m00 += x0;
    }
    double cy = m00 != 0 ? m01 / m00 : (double)h / 2;
    double cx = m00 != 0 ? m10 / m00 : (double)w / 2;
    Py_ssize_t top = (Py_ssize_t)nearbyint(CANVAS / 2.0 - cy);
    Py_ssize_t left = (Py_ssize_t)nearbyint(CANVAS / 2.0 - cx);
    if (top > CANVAS - h) top = CANVAS - h;
    if (top < 0) top = 0;
    if (left > CANVAS - w) left = CANVAS - w;
    if (left < 0) left = 0;
    for (Py_ssize_t y = 0; y < h; y++)
        for (Py_ssize_t x = 0; x < w; x++) canvas[(top + y) * CANVAS + left + x] = v[y * w + x];
    for (int i = 0; i < CANVAS * CANVAS; i++) {
        float q = canvas[i] * 255.0f;
        q = q + 0.5f;
        out[i] = (unsigned char)q;
    }
    return 0;
}

/* ---------------------------------------------------------------- Python */

/* Whether any of n floats is NaN or infinite. */
static int any_not_finite(const float *pixels, Py_ssize_t n) {
    uint32_t found = 0;
    for (Py_ssize_t i = 0; i < n; i++) found |= not_finite(pixels[i]);
    return found != 0;
}

/* A claimed side, for PyArg_ParseTuple's "O&": any integer, clipped to Py_ssize_t's range
   (PyNumber_AsSsize_t with no exception type), so that 2**64 is refused by image_arg with
   the ValueError of any other impossible size rather than by an OverflowError. */
static int side_arg(PyObject *obj, void *side) {
    Py_ssize_t value = PyNumber_AsSsize_t(obj, NULL);
    if (value == -1 && PyErr_Occurred()) return 0; /* not an integer: TypeError */
    *(Py_ssize_t *)side = value;
    return 1;
}

/* Checks a float32 image argument: a C-contiguous buffer of h * w finite floats. Every
   bound is checked before anything is multiplied, so h * w * 4 cannot overflow (a huge h
   would wrap around to the buffer's length and send the kernel far past its end); the
   division keeps that true where Py_ssize_t has 32 bits. */
static int image_arg(PyObject *obj, Py_buffer *view, Py_ssize_t h, Py_ssize_t w) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0 ||
        h < 1 || w < 1 || h > MAX_SIDE || w > MAX_SIDE || h > PY_SSIZE_T_MAX / 4 / w ||
        view->len != h * w * 4) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, BAD_ARGUMENT);
        return -1;
    }
    if (any_not_finite((const float *)view->buf, h * w)) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, NOT_FINITE);
        return -1;
    }
    return 0;
}

static PyObject *py_ink_box(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *obj;
    Py_ssize_t h, w;
    Py_buffer view;
    Box box = {NULL, 0, 0};
    if (!PyArg_ParseTuple(args, "OO&O&", &obj, side_arg, &h, side_arg, &w) ||
        image_arg(obj, &view, h, w) < 0)
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS status = ink_box(view.buf, h, w, &box);
    Py_END_ALLOW_THREADS PyBuffer_Release(&view);
    if (status < 0) return PyErr_NoMemory();
    if (status == OVERFLOWS) {
        PyErr_SetString(PyExc_ValueError, TOO_LARGE);
        return NULL;
    }
    if (status > 0) return PyLong_FromLong(status);
    if (box.h * box.w > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(float)) return PyErr_NoMemory();
    PyObject *pixels =
        PyByteArray_FromStringAndSize((const char *)box.pixels, box.h * box.w * sizeof(float));
    if (pixels == NULL) return NULL;
    return Py_BuildValue("(Nnn)", pixels, box.h, box.w);
}

static PyObject *py_centre(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *obj;
    Py_ssize_t h, w;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "OO&O&", &obj, side_arg, &h, side_arg, &w) ||
        image_arg(obj, &view, h, w) < 0)
        return NULL;
    if (h > CANVAS || w > CANVAS) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a digit to centre is at most 28 x 28");
        return NULL;
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, CANVAS * CANVAS);
    int status = 0;
    if (out != NULL) {
        /* ~1 us of work: keeping the GIL is cheaper than handing it over and back. */
        status = centre(view.buf, h, w, (unsigned char *)PyByteArray_AS_STRING(out));
    }
    PyBuffer_Release(&view);
    if (status < 0) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    return out;
}

static PyMethodDef methods[] = {
    {"ink_box", py_ink_box, METH_VARARGS,
     "ink_box(gray, h, w) -> (bytearray of float32 pixels, h, w), or 1 (no contrast) or 2 "
     "(no ink): digits.ink_map, crop_to_ink and restroke."},
    {"centre", py_centre, METH_VARARGS,
     "centre(digit, h, w) -> bytearray of 784: the 28 x 28 uint8 digit, centred by mass."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ink", "LeNet's preprocessing after the decode, compiled.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ink(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "NO_CONTRAST", NO_CONTRAST) < 0 ||
        PyModule_AddIntConstant(m, "NO_INK", NO_INK) < 0 ||
        PyModule_AddStringConstant(m, "NOT_FINITE", NOT_FINITE) < 0 ||
        PyModule_AddStringConstant(m, "TOO_LARGE", TOO_LARGE) < 0 ||
        PyModule_AddIntConstant(m, "MAX_SIDE", MAX_SIDE) < 0 ||
        PyModule_AddObject(m, "INK_THRESHOLD", PyFloat_FromDouble(INK_THRESHOLD)) < 0 ||
        PyModule_AddObject(m, "FAINT", PyFloat_FromDouble(FAINT)) < 0 ||
        PyModule_AddObject(m, "GRAIN_QUANTILE", PyFloat_FromDouble(GRAIN_QUANTILE)) < 0 ||
        PyModule_AddObject(m, "GRAIN_FACTOR", PyFloat_FromDouble(GRAIN_FACTOR)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

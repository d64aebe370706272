/*
 * The min-heap of timer slots (see timer_heap.h).  The array doubles when
 * full and halves when a quarter used, so memory follows the number of
 * pending entries both ways (a burst of a million delayed records should
 * not pin 16 MB forever).
 */
#include "timer/timer_heap.h"

#include <errno.h>
#include <stdlib.h>

#define HEAP_MIN_CAP 64

static int heap_resize(struct timer_heap *h, size_t cap)
{
    struct timer_slot *a = realloc(h->a, cap * sizeof *a);
    if (!a)
        return -ENOMEM;
    h->a = a;
    h->cap = cap;
    return 0;
}

static void sift_down(struct timer_heap *h, size_t i)
{
    struct timer_slot s = h->a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && timer_slot_before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!timer_slot_before(&h->a[c], &s))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    h->a[i] = s;
}

int timer_heap_reserve(struct timer_heap *h, size_t extra)
{
    size_t cap = h->cap ? h->cap : HEAP_MIN_CAP;
    while (cap - h->n < extra)
        cap *= 2;
    return cap == h->cap ? 0 : heap_resize(h, cap);
}

int timer_heap_append(struct timer_heap *h, struct timer_slot s)
{
    if (h->n == h->cap && heap_resize(h, h->cap ? h->cap * 2 : HEAP_MIN_CAP) < 0)
        return -ENOMEM;
    h->a[h->n++] = s;
    return 0;
}

int timer_heap_push(struct timer_heap *h, struct timer_slot s)
{
    if (timer_heap_append(h, s) < 0)
        return -ENOMEM;
    size_t i = h->n - 1;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_slot_before(&s, &h->a[p]))
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = s;
    return 0;
}

bool timer_heap_pop(struct timer_heap *h, struct timer_slot *out)
{
    if (!h->n)
        return false;
    *out = h->a[0];
    h->n--;
    if (h->n) {
        h->a[0] = h->a[h->n];
        sift_down(h, 0);
    }
    /* Shrinking can fail harmlessly: the larger array stays. */
    if (h->cap > HEAP_MIN_CAP && h->n < h->cap / 4)
        (void)heap_resize(h, h->cap / 2);
    return true;
}

void timer_heap_build(struct timer_heap *h)
{
    for (size_t i = h->n / 2; i-- > 0;)
        sift_down(h, i);
}

void timer_heap_free(struct timer_heap *h)
{
    free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}

/* LD_PRELOAD shim for `python -m callflow.bench.footprint`: each time an epoll wait returns
 * events, read one byte of every 64-byte line of a 4 MB buffer, so that the event loop handles
 * every wake-up with cold caches, as a core that idles between calls does. Run under
 * `valgrind --tool=callgrind --cache-sim=yes --toggle-collect=coldshim_flush
 * --collect-atstart=yes`, the misses then counted are the code and data each wake-up has to
 * fetch again, without the shim's own. COLDSHIM_REPORT=1 prints the
 * number of flushes at exit (for tests). Built by callflow.bench.footprint with the C compiler. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>

#define FLUSH_BYTES (4u << 20)
#define LINE 64u

static volatile unsigned char *buffer;
static unsigned long flushes;

__attribute__((noinline)) void coldshim_flush(void) {
    if (buffer == NULL) {
        buffer = malloc(FLUSH_BYTES);
        if (buffer == NULL)
            return;
        for (unsigned i = 0; i < FLUSH_BYTES; i += LINE)
            buffer[i] = 1;
    }
    unsigned sum = 0;
    for (unsigned i = 0; i < FLUSH_BYTES; i += LINE)
        sum += buffer[i];
    flushes += sum > 0;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
    static int (*real)(int, struct epoll_event *, int, int);
    if (real == NULL)
        real = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
    int n = real(epfd, events, maxevents, timeout);
    if (n > 0)
        coldshim_flush();
    return n;
}

int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
                const sigset_t *sigmask) {
    static int (*real)(int, struct epoll_event *, int, int, const sigset_t *);
    if (real == NULL)
        real = (int (*)(int, struct epoll_event *, int, int, const sigset_t *))dlsym(
            RTLD_NEXT, "epoll_pwait");
    int n = real(epfd, events, maxevents, timeout, sigmask);
    if (n > 0)
        coldshim_flush();
    return n;
}

__attribute__((destructor)) static void coldshim_report(void) {
    const char *report = getenv("COLDSHIM_REPORT");
    if (report != NULL && report[0] == '1')
        fprintf(stderr, "coldshim: %lu flushes\n", flushes);
}

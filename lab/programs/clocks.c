/*
 * clocks - print the guest's CLOCK_REALTIME and CLOCK_MONOTONIC, in nanoseconds.
 *
 * usage: clocks [-e]
 *
 * One line: "REALTIME MONOTONIC", two integers in nanoseconds, read back to
 * back. The monotonic value is the midpoint of two readings around the
 * realtime one, so the difference of the two is the realtime-monotonic
 * offset at that moment to within the cost of a clock read. The strace
 * tracer uses it to move strace's -ttt timestamps (realtime) onto the
 * monotonic clock of the event schema (what ftrace's `mono` clock shows).
 *
 * With -e, one such line for each line read on standard input, until its
 * end: the controller times these round trips to compare the guest's clock
 * with its own (lab/run/round_trips.py).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "clocks"

static void usage(void)
{
    fputs("usage: " PROG " [-e]\n"
          "  print CLOCK_REALTIME and CLOCK_MONOTONIC in nanoseconds on one line\n"
          "  -e  print one such line for each line read on standard input\n",
          stderr);
    exit(2);
}

static long long read_clock(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) {
        perror(PROG ": clock_gettime");
        exit(1);
    }
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int print_clocks(void)
{
    long long before = read_clock(CLOCK_MONOTONIC);
    long long realtime = read_clock(CLOCK_REALTIME);
    long long after = read_clock(CLOCK_MONOTONIC);
    printf("%lld %lld\n", realtime, before + (after - before) / 2);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return print_clocks();
    if (argc != 2 || strcmp(argv[1], "-e") != 0)
        usage();
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL) {
        if (strchr(line, '\n') == NULL && !feof(stdin))
            continue; /* the rest of a long line: answer its end only */
        if (print_clocks() != 0)
            return 1;
    }
    return 0;
}

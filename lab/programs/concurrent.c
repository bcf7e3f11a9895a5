/*
 * concurrent - TCP client holding N connections open at once (see replyhi).
 *
 * usage: concurrent ADDRESS PORT N
 *
 * Phases, each finished for every connection before the next begins:
 *   1. socket (non-blocking) and connect, N times, without waiting;
 *   2. poll until every connect completed (getsockopt SO_ERROR tells how);
 *   3. sendto "hello" on each connection;
 *   4. poll and recvfrom until each connection answered "hi";
 *   5. close all.
 * One thread and poll keep the trace readable: the N connects are all in
 * flight together yet appear in order. Serve it with `replyhi ADDRESS PORT N`.
 * N is at most MAX_CONNS: each connection holds a descriptor (1024 by default),
 * and all N must fit replyhi's listen backlog (1024) as they wait to be accepted.
 * Exits 1 unless all N connections got "hi".
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "concurrent"
#define PHASE_TIMEOUT_MS 30000 /* per waiting phase; slow emulated guests included */
#define MAX_REPORTS 10         /* failures described one by one, then only counted */
#define MAX_CONNS 1000

enum state { CONNECTING, CONNECTED, WAITING, OK, FAILED };

struct conn {
    int fd;
    enum state state;
    size_t got;
    char reply[4];
};

static struct conn *conns;
static long nconns, nreports;

static void usage(void)
{
    fputs("usage: " PROG " ADDRESS PORT N\n"
          "  connect N TCP connections at once (N: 1 to 1000), then send \"hello\"\n"
          "  on each and expect \"hi\" (serve with: replyhi ADDRESS PORT N)\n",
          stderr);
    exit(2);
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static long parse_number(const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        usage();
    return value;
}

/* Numeric only: no DNS and no NSS, which a static glibc binary cannot load. */
static struct addrinfo *resolve(const char *address, const char *port, int socktype)
{
    struct addrinfo hints, *result;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(address, port, &hints, &result);
    if (rc != 0) {
        fprintf(stderr, PROG ": bad address %s (numeric IPv4 or IPv6 only): %s\n", address,
                gai_strerror(rc));
        usage();
    }
    return result;
}

static void fail(long i, const char *what, int err)
{
    conns[i].state = FAILED;
    if (nreports++ < MAX_REPORTS)
        fprintf(stderr, PROG ": connection %ld: %s: %s\n", i + 1, what,
                err ? strerror(err) : "unexpected reply");
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Poll the connections in state `from` for `events` and hand each ready one
 * to `ready`, until none is left in `from` or the phase times out. */
static void wait_phase(enum state from, short events, void (*ready)(long),
                       const char *what, struct pollfd *pfds, long *index)
{
    long deadline = now_ms() + PHASE_TIMEOUT_MS;
    for (;;) {
        nfds_t n = 0;
        for (long i = 0; i < nconns; i++) {
            if (conns[i].state == from) {
                pfds[n] = (struct pollfd){.fd = conns[i].fd, .events = events};
                index[n++] = i;
            }
        }
        if (n == 0)
            return;
        long left = deadline - now_ms();
        int rc = left > 0 ? poll(pfds, n, (int)left) : 0;
        if (rc < 0)
            die(PROG ": poll");
        if (rc == 0) {
            for (nfds_t k = 0; k < n; k++)
                fail(index[k], what, ETIMEDOUT);
            return;
        }
        for (nfds_t k = 0; k < n; k++)
            if (pfds[k].revents != 0)
                ready(index[k]);
    }
}

static void connect_done(long i)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(conns[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0)
        fail(i, "connect", err);
    else
        conns[i].state = CONNECTED;
}

static void reply_ready(long i)
{
    struct conn *c = &conns[i];
    ssize_t n = recv(c->fd, c->reply + c->got, 2 - c->got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        fail(i, "recv", errno);
        return;
    }
    c->got += (size_t)n;
    if (n == 0 || memcmp(c->reply, "hi", c->got) != 0)
        fail(i, "recv", 0);
    else if (c->got == 2)
        c->state = OK;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        usage();
    parse_number(argv[2], 1, 65535);
    nconns = parse_number(argv[3], 1, MAX_CONNS);
    struct addrinfo *ai = resolve(argv[1], argv[2], SOCK_STREAM);
    conns = calloc((size_t)nconns, sizeof *conns);
    struct pollfd *pfds = calloc((size_t)nconns, sizeof *pfds);
    long *index = calloc((size_t)nconns, sizeof *index);
    if (conns == NULL || pfds == NULL || index == NULL)
        die(PROG ": calloc");

    for (long i = 0; i < nconns; i++) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            die(errno == EMFILE ? PROG ": socket (raise the limit: ulimit -n)" : PROG ": socket");
        conns[i].fd = fd;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            conns[i].state = CONNECTED;
        else if (errno == EINPROGRESS)
            conns[i].state = CONNECTING;
        else
            fail(i, "connect", errno);
    }
    freeaddrinfo(ai);
    wait_phase(CONNECTING, POLLOUT, connect_done, "connect", pfds, index);

    for (long i = 0; i < nconns; i++) {
        if (conns[i].state != CONNECTED)
            continue;
        ssize_t n = send(conns[i].fd, "hello", 5, MSG_NOSIGNAL);
        if (n == 5)
            conns[i].state = WAITING;
        else
            fail(i, "send", n < 0 ? errno : EAGAIN); /* 5 bytes never fill a fresh buffer */
    }
    wait_phase(WAITING, POLLIN, reply_ready, "recv", pfds, index);

    long ok = 0;
    for (long i = 0; i < nconns; i++) {
        ok += conns[i].state == OK;
        close(conns[i].fd);
    }
    if (nreports > MAX_REPORTS)
        fprintf(stderr, PROG ": %ld more failure(s) not shown\n", nreports - MAX_REPORTS);
    printf(PROG ": %ld of %ld connection(s) succeeded\n", ok, nconns);
    return ok == nconns ? 0 : 1;
}

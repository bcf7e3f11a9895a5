/*
 * replyhi - TCP server that answers "hello" with "hi".
 *
 * usage: replyhi ADDRESS PORT [COUNT]
 *
 * Serves COUNT connections (default 1) one after another, then exits. The
 * syscalls are the classic ones: socket, setsockopt, bind, listen, then per
 * connection accept, recvfrom, sendto, close. ADDRESS is numeric (IPv4 or
 * IPv6; "0.0.0.0" or "::" for any address).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "replyhi"
/* `concurrent` connects up to ~1000 clients before any sends, and they all
 * wait in the accept queue: the backlog must hold them (somaxconn caps it). */
#define BACKLOG 1024

static void usage(void)
{
    fputs("usage: " PROG " ADDRESS PORT [COUNT]\n"
          "  serve COUNT (default 1) TCP connections: reply \"hi\" to \"hello\"\n",
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

/* Receive until `want` arrived, the peer closed, or the data stopped matching
 * `want`: one recv in the usual case, yet robust to a message split in two. */
static ssize_t recv_message(int fd, char *buf, size_t cap, const char *want)
{
    size_t got = 0, len = strlen(want);
    while (got < cap - 1) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
        if (got >= len || memcmp(buf, want, got) != 0)
            break;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4)
        usage();
    parse_number(argv[2], 1, 65535);
    long count = argc > 3 ? parse_number(argv[3], 1, 1000000) : 1;
    struct addrinfo *ai = resolve(argv[1], argv[2], SOCK_STREAM);

    int lfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (lfd < 0)
        die(PROG ": socket");
    int one = 1; /* rebind at once when a lab re-runs an experiment */
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die(PROG ": setsockopt SO_REUSEADDR");
    if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0)
        die(PROG ": bind");
    freeaddrinfo(ai);
    if (listen(lfd, BACKLOG) < 0)
        die(PROG ": listen");

    long served;
    for (served = 0; served < count; served++) {
        struct sockaddr_storage peer; /* so the trace shows the client's address */
        socklen_t peer_len = sizeof peer;
        int fd = accept(lfd, (struct sockaddr *)&peer, &peer_len);
        if (fd < 0)
            die(PROG ": accept");
        char buf[64];
        if (recv_message(fd, buf, sizeof buf, "hello") < 0)
            die(PROG ": recv");
        if (strcmp(buf, "hello") == 0) {
            if (send(fd, "hi", 2, MSG_NOSIGNAL) != 2)
                die(PROG ": send");
        } else {
            fprintf(stderr, PROG ": connection %ld: expected \"hello\", not replying\n",
                    served + 1);
        }
        if (close(fd) < 0)
            die(PROG ": close");
    }
    close(lfd);
    printf(PROG ": served %ld connection(s)\n", served);
    return 0;
}

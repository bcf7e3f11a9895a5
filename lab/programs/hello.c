/*
 * hello - TCP client that says "hello" and expects "hi" back (see replyhi).
 *
 * usage: hello ADDRESS PORT [COUNT]
 *
 * COUNT times (default 1), one after another: socket, connect, sendto
 * "hello", recvfrom the reply, print it, close. Exits 1 unless every reply
 * is "hi". ADDRESS is numeric (IPv4 or IPv6).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "hello"

static void usage(void)
{
    fputs("usage: " PROG " ADDRESS PORT [COUNT]\n"
          "  COUNT times (default 1): connect, send \"hello\", print the reply\n",
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

    for (long i = 1; i <= count; i++) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            die(PROG ": socket");
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            die(PROG ": connect");
        if (send(fd, "hello", 5, MSG_NOSIGNAL) != 5)
            die(PROG ": send");
        char buf[64];
        ssize_t n = recv_message(fd, buf, sizeof buf, "hi");
        if (n < 0)
            die(PROG ": recv");
        if (n == 0) {
            fprintf(stderr, PROG ": connection %ld: closed without a reply\n", i);
            return 1;
        }
        /* Flush now so the write sits at the same place in every trace,
         * whether stdout is a terminal or a pipe. */
        printf("%s\n", buf);
        fflush(stdout);
        if (close(fd) < 0)
            die(PROG ": close");
        if (strcmp(buf, "hi") != 0) {
            fprintf(stderr, PROG ": connection %ld: expected \"hi\"\n", i);
            return 1;
        }
    }
    freeaddrinfo(ai);
    printf(PROG ": received %ld reply(ies)\n", count);
    return 0;
}

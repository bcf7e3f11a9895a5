/*
 * udpsend - UDP client that sends "ping N" and waits for each echo (see udpecho).
 *
 * usage: udpsend ADDRESS PORT [COUNT]
 *
 * socket, setsockopt SO_RCVTIMEO, then for N = 1..COUNT (default 1): sendto
 * "ping N", recvfrom the echo; then close. Exits 1 when an echo does not come
 * back within the timeout or differs. ADDRESS is numeric (IPv4 or IPv6).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PROG "udpsend"
/* UDP has no connection to fail: without a timeout a lost datagram (or a
 * server not yet bound) would hang the client for ever. */
#define TIMEOUT_S 3

static void usage(void)
{
    fputs("usage: " PROG " ADDRESS PORT [COUNT]\n"
          "  send COUNT (default 1) datagrams \"ping N\" and wait for each echo\n",
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

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4)
        usage();
    parse_number(argv[2], 1, 65535);
    long count = argc > 3 ? parse_number(argv[3], 1, 1000000) : 1;
    struct addrinfo *ai = resolve(argv[1], argv[2], SOCK_DGRAM);

    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        die(PROG ": socket");
    struct timeval timeout = {.tv_sec = TIMEOUT_S, .tv_usec = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0)
        die(PROG ": setsockopt SO_RCVTIMEO");

    for (long i = 1; i <= count; i++) {
        char ping[32], echo[64];
        int len = snprintf(ping, sizeof ping, "ping %ld", i);
        if (sendto(fd, ping, (size_t)len, 0, ai->ai_addr, ai->ai_addrlen) != len)
            die(PROG ": sendto");
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        ssize_t n = recvfrom(fd, echo, sizeof echo, 0, (struct sockaddr *)&peer, &peer_len);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fprintf(stderr, PROG ": no echo of \"%s\" within %d s\n", ping, TIMEOUT_S);
            return 1;
        }
        if (n < 0)
            die(PROG ": recvfrom");
        if (n != len || memcmp(echo, ping, (size_t)len) != 0) {
            fprintf(stderr, PROG ": the echo of \"%s\" differs\n", ping);
            return 1;
        }
    }
    freeaddrinfo(ai);
    close(fd);
    printf(PROG ": received %ld echo(es)\n", count);
    return 0;
}

/*
 * udpecho - UDP server that echoes datagrams back to their sender.
 *
 * usage: udpecho ADDRESS PORT [COUNT]
 *
 * socket, bind, then COUNT times (default 1) recvfrom and sendto the same
 * bytes back; then close and exit. ADDRESS is numeric (IPv4 or IPv6).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "udpecho"

static void usage(void)
{
    fputs("usage: " PROG " ADDRESS PORT [COUNT]\n"
          "  echo COUNT (default 1) UDP datagrams back to their senders\n",
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

static char buf[65536]; /* the largest UDP payload fits */

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
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die(PROG ": bind");
    freeaddrinfo(ai);

    for (long i = 0; i < count; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &peer_len);
        if (n < 0)
            die(PROG ": recvfrom");
        if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peer_len) != n)
            die(PROG ": sendto");
    }
    close(fd);
    printf(PROG ": echoed %ld datagram(s)\n", count);
    return 0;
}

// The floor of any networked get on this machine, for bench/run.sh: one process sends a file
// over loopback TCP with sendfile (no copy in user space, the file read from the page cache),
// another receives it into a 1 MiB buffer and writes it to a new file. No checksum, no
// protocol, one stream: what is left is the kernel's cost of moving bytes through a socket.
// Usage: tcpcopy SRC DST
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: tcpcopy SRC DST\n"); return 2; }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1) ||
        getsockname(listener, (struct sockaddr *)&address, &length)) { perror("listen"); return 1; }
    pid_t child = fork();
    if (child == 0) {
        int source = open(argv[1], O_RDONLY);
        struct stat status; fstat(source, &status);
        int socket_fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(socket_fd, (struct sockaddr *)&address, sizeof address)) { perror("connect"); _exit(1); }
        off_t offset = 0;
        while (offset < status.st_size) { if (sendfile(socket_fd, source, &offset, status.st_size - offset) <= 0) { perror("sendfile"); _exit(1); } }
        close(socket_fd);
        _exit(0);
    }
    int connection = accept(listener, NULL, NULL);
    int destination = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    static char buffer[1 << 20];
    for (;;) {
        ssize_t got = recv(connection, buffer, sizeof buffer, 0);
        if (got < 0) { perror("recv"); return 1; }
        if (got == 0) break;
        for (ssize_t done = 0; done < got;) { ssize_t wrote = write(destination, buffer + done, got - done); if (wrote <= 0) { perror("write"); return 1; } done += wrote; }
    }
    close(destination);
    int status; waitpid(child, &status, 0);
    return WEXITSTATUS(status);
}

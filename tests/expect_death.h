/* Shared by the C tests: run a case that must die (ep_die) in a forked child,
 * capture its stderr, and count a failure unless it exited non-zero with the
 * expected words in its message. The including file defines
 * `static int failures` before including this header. Fork before MPI_Init:
 * a child of an MPI process would take the job down through MPI_Abort. */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void expect_death(const char *what, void (*fn)(const void *), const void *arg, const char *want) {
    int fd[2];
    if (pipe(fd) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        fn(arg);
        _exit(0); /* it should have died */
    }
    close(fd[1]);
    char msg[4096] = {0};
    size_t n = 0;
    for (ssize_t got; n < sizeof msg - 1 && (got = read(fd[0], msg + n, sizeof msg - 1 - n)) > 0;) n += (size_t)got;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int died = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    if (!died || !strstr(msg, want)) {
        fprintf(stderr, "FAIL %s: want a death mentioning '%s', got %s: %s\n", what, want, died ? "death" : "exit 0",
                msg);
        failures++;
    } else {
        printf("ok   %-34s %s", what, msg);
    }
}

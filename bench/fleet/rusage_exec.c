/*
 * rusage_exec: run a command and write its wall clock and wait4() resource usage as JSON.
 *
 *   rusage_exec RESULT.json cmd [args...]
 *
 * Why not os.wait4 from the Python harness directly: Linux carries the high-water RSS of the
 * address space a process leaves at execve() into its ru_maxrss. A child forked (or vforked)
 * from a 60 MB Python harness therefore reports at least 60 MB however small it is. This
 * launcher is a few hundred KB, so the command it forks reports its own peak RSS; user and
 * sys CPU are that command's alone. The exit status is passed through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s RESULT.json cmd [args...]\n", argv[0]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("rusage_exec: fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("rusage_exec: exec");
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("rusage_exec: wait4");
            return 127;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(argv[1], "w");
    if (f) {
        fprintf(f,
                "{\"wall_s\": %.6f, \"user_s\": %.6f, \"sys_s\": %.6f, \"maxrss_kb\": %ld, "
                "\"exit\": %d}\n",
                wall, tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss, code);
        fclose(f);
    }
    return code;
}

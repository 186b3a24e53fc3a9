/*
 * The whole "image" of a test container without a shell or a mount binary: the tests build it with
 * gcc -static and put it alone at /init of a root filesystem.
 *
 *   init pivot <newroot> <readyfile>   pivot_root into <newroot>, drop the old root, then sleep forever;
 *                                      <readyfile> (opened before the pivot) gets "ready" once done
 *   init cat <file>                    print a file (exit 1 with the error on failure)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int die(const char *what, const char *path)
{
	fprintf(stderr, "%s: %s: %s\n", what, path, strerror(errno));
	return 1;
}

static int do_pivot(const char *newroot, const char *readyfile)
{
	int ready = open(readyfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (ready < 0)
		return die("open", readyfile);
	if (chdir(newroot) < 0)
		return die("chdir", newroot);
	mkdir(".oldroot", 0700);
	if (syscall(SYS_pivot_root, ".", ".oldroot") < 0)
		return die("pivot_root", newroot);
	if (chdir("/") < 0 || umount2("/.oldroot", MNT_DETACH) < 0 || rmdir("/.oldroot") < 0)
		return die("drop old root", "/.oldroot");
	if (write(ready, "ready\n", 6) != 6)
		return die("write", readyfile);
	close(ready);
	for (;;)
		pause();
}

static int do_cat(const char *path)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return die("cat", path);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(STDOUT_FILENO, buf, (size_t)n) != n)
			return die("write", "stdout");
	if (n < 0)
		return die("cat", path);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "pivot") == 0)
		return do_pivot(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "cat") == 0)
		return do_cat(argv[2]);
	fprintf(stderr, "usage: init pivot <newroot> <readyfile> | init cat <file>\n");
	return 2;
}

/*
 * lxcfs-remount: the node agent's native helper for the mount operations Node.js cannot do itself.
 *
 * Node.js is multi-threaded, and the kernel refuses setns(CLONE_NEWNS) to multi-threaded processes, so
 * entering a container's mount namespace needs a separate single-threaded process. The classic mount(2)
 * API cannot bind a file from one namespace into another either; the new mount API can: a detached
 * clone made with open_tree(OPEN_TREE_CLONE) in the agent's namespace is attached inside the container
 * with move_mount() after setns(). Nothing is needed inside the container image.
 *
 * Every result is one JSON object per line on stdout; failures name the step and the errno.
 *
 *   lxcfs-remount check                      does the kernel have the new mount API?
 *   lxcfs-remount read <file>                read a file (a liveness probe through FUSE)
 *   lxcfs-remount probe <file>               runs until stdin ends: for each line read from it, one
 *                                            read of <file> at offset 0 (opened at the first line and
 *                                            kept open), answered with one result line
 *   lxcfs-remount tmpfs <dir> <options>      mount a tmpfs on <dir>
 *   lxcfs-remount bind <source> <target>     bind <source> onto <target> (same namespace)
 *   lxcfs-remount detach <path>              lazily unmount the top mount at <path>
 *   lxcfs-remount swap --ns <proc>/<pid> <source> <target> ro|rw replace|attach [...] [--ns ...]
 *       For each namespace, in a child process: clone every <source> in our namespace, then enter the
 *       namespace and root of <pid> and put each clone at <target>. "replace": a dead lxcfs mount is on
 *       <target> (swap it atomically with MOVE_MOUNT_BENEATH where the kernel has it, otherwise detach
 *       it and attach); "attach": nothing of ours is there.
 *   lxcfs-remount peek --ns <proc>/<pid> <target>... [--ns ...]
 *       For each namespace, in a child process: enter it and read one byte of each <target>, as the
 *       container's processes would, so a dead file shows up whatever mountinfo says.
 *   lxcfs-remount watch <proc>
 *       Runs until stdin ends, reading commands from it, one per line: "add <key> <pid>" watches the
 *       mount namespace of <proc>/<pid> (replacing a watch of the same key), "remove <key>" stops
 *       watching. Prints {"event":"added"} (ok with the namespace's link, or the failed step and errno)
 *       for each add, {"event":"changed"} when that namespace's mount table changed, {"event":"gone"}
 *       when <pid> exited (the watch is then dropped); each with key and pid.
 *   lxcfs-remount cgroups <dir>
 *       Runs until stdin ends: watches <dir> (a cgroup hierarchy) and every directory below it with
 *       inotify. Prints {"event":"ready"} once every directory found is watched (with ok, the number
 *       watched, or the failed step and errno), {"event":"created","path":...} for each cgroup created
 *       below <dir>, {"event":"overflow"} when the kernel dropped events (every directory is walked
 *       again), and {"event":"incomplete"} (step, errno) when a directory could not be watched.
 *
 * LXCFS_REMOUNT_EMULATE_OLD_KERNEL=1 makes swap behave as on a kernel without MOVE_MOUNT_BENEATH (< 6.5)
 * and without mount_setattr (< 5.12), so the fallbacks are exercised on a new kernel too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Older C libraries lack the new mount API: the numbers are the same on every architecture. */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 0x8
#endif

/* The kernel's struct mount_attr, under our own name so it cannot clash with a C library's copy. */
struct helper_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

static int sys_open_tree(int dfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}

static int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned int flags)
{
	return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

static int sys_mount_setattr(int dfd, const char *path, unsigned int flags, struct helper_mount_attr *attr)
{
	return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, sizeof(*attr));
}

/* ---- JSON lines ---------------------------------------------------------------------------------- */

struct line {
	char buf[16384];
	size_t len;
	int fields;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
	if (l->len + n >= sizeof(l->buf) - 3)
		n = sizeof(l->buf) - 3 - l->len; /* leave room for "}\n" */
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_string(struct line *l, const char *s)
{
	put_raw(l, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put_raw(l, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put_raw(l, esc, 6);
		} else {
			put_raw(l, (const char *)&c, 1);
		}
	}
	put_raw(l, "\"", 1);
}

static void put_key(struct line *l, const char *key)
{
	put_raw(l, l->fields++ ? "," : "{", 1);
	put_string(l, key);
	put_raw(l, ":", 1);
}

static void field_str(struct line *l, const char *key, const char *value)
{
	put_key(l, key);
	put_string(l, value);
}

static void field_bool(struct line *l, const char *key, int value)
{
	put_key(l, key);
	put_raw(l, value ? "true" : "false", value ? 4 : 5);
}

static void field_long(struct line *l, const char *key, long value)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%ld", value);
	put_key(l, key);
	put_raw(l, num, (size_t)n);
}

/* Records a failed step with the errno's name (ENOENT) and text. */
static void field_error(struct line *l, const char *step, int err)
{
	const char *name = strerrorname_np(err);
	field_bool(l, "ok", 0);
	field_str(l, "step", step);
	field_str(l, "errno", name ? name : "EUNKNOWN");
	field_str(l, "error", strerror(err));
}

/* One write(2) per line: no stdio buffer to duplicate across fork(), no interleaving in the pipe. */
static void emit(struct line *l)
{
	if (l->fields == 0)
		put_raw(l, "{", 1);
	memcpy(l->buf + l->len, "}\n", 2);
	l->len += 2;
	for (size_t off = 0; off < l->len;) {
		ssize_t n = write(STDOUT_FILENO, l->buf + off, l->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	l->len = 0;
	l->fields = 0;
}

static int emit_result(const char *step, int failed_errno)
{
	struct line l = {0};
	if (failed_errno)
		field_error(&l, step, failed_errno);
	else
		field_bool(&l, "ok", 1);
	emit(&l);
	return failed_errno ? 1 : 0;
}

/* ---- simple commands ----------------------------------------------------------------------------- */

static int cmd_check(void)
{
	struct line l = {0};
	int fd = sys_open_tree(AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0) {
		field_error(&l, "open_tree", errno);
		emit(&l);
		return 1;
	}
	struct helper_mount_attr attr = {.propagation = MS_PRIVATE};
	int setattr_ok = sys_mount_setattr(fd, "", AT_EMPTY_PATH, &attr) == 0;
	close(fd);
	field_bool(&l, "ok", 1);
	field_bool(&l, "mountSetattr", setattr_ok);
	emit(&l);
	return 0;
}

static int cmd_read(const char *path)
{
	char buf[65536];
	ssize_t total = 0, n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return emit_result("open", errno);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	int err = n < 0 ? errno : 0;
	close(fd);
	if (err)
		return emit_result("read", err);
	struct line l = {0};
	field_bool(&l, "ok", 1);
	field_long(&l, "bytes", (long)total);
	emit(&l);
	return 0;
}

/*
 * The agent's probe. The file is held here, never by the agent: closing an lxcfs file sends lxcfs a
 * FLUSH, and every process the agent forks would close its copy at exec, hanging in exec (and the agent
 * waiting for it) while lxcfs hangs. This process forks nothing. A read of an lxcfs proc file at offset
 * 0 is answered afresh, so each probe costs lxcfs one request.
 */
static int cmd_probe(const char *path)
{
	char buf[8192];
	int fd = -1;
	for (;;) {
		char request[64];
		ssize_t got = read(STDIN_FILENO, request, sizeof(request));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return 0;
		for (ssize_t i = 0; i < got; i++) {
			if (request[i] != '\n')
				continue;
			if (fd < 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
				emit_result("open", errno);
				continue;
			}
			ssize_t n = pread(fd, buf, sizeof(buf), 0);
			if (n < 0) {
				emit_result("read", errno);
				continue;
			}
			struct line l = {0};
			field_bool(&l, "ok", 1);
			field_long(&l, "bytes", (long)n);
			emit(&l);
		}
	}
}

static int cmd_tmpfs(const char *dir, const char *options)
{
	if (mount("lxcfs-webhook", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) < 0)
		return emit_result("mount", errno);
	return emit_result("", 0);
}

static int cmd_bind(const char *source, const char *target)
{
	int fd = sys_open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return emit_result("open_tree", errno);
	int rc = sys_move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
	int err = rc < 0 ? errno : 0;
	close(fd);
	return emit_result("move_mount", err);
}

static int cmd_detach(const char *path)
{
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
		return emit_result("umount2", errno);
	return emit_result("", 0);
}

/* ---- swap ---------------------------------------------------------------------------------------- */

struct target {
	const char *source;
	const char *path;
	int read_only;
	int replace;
	int clone_fd;
	int classic_attrs; /* mount_setattr missing: set propagation and ro with mount(2) after attaching */
};

static int emulate_old_kernel;

/* Reports one target's result; returns 1 when it failed. */
static int report(const char *ns, const struct target *t, const char *how, const char *step, int err)
{
	struct line l = {0};
	field_str(&l, "ns", ns);
	field_str(&l, "target", t->path);
	if (err) {
		field_error(&l, step, err);
	} else {
		field_bool(&l, "ok", 1);
		field_str(&l, "how", how);
	}
	emit(&l);
	return err != 0;
}

/* Clone the live source in our own namespace, private, read-only when the container had it so. */
static int prepare_clone(const char *ns, struct target *t)
{
	t->clone_fd = sys_open_tree(AT_FDCWD, t->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (t->clone_fd < 0) {
		report(ns, t, NULL, "open_tree", errno);
		return -1;
	}
	struct helper_mount_attr attr = {
		.attr_set = t->read_only ? MOUNT_ATTR_RDONLY : 0,
		.propagation = MS_PRIVATE,
	};
	if (emulate_old_kernel || sys_mount_setattr(t->clone_fd, "", AT_EMPTY_PATH, &attr) < 0) {
		if (!emulate_old_kernel && errno != ENOSYS) {
			report(ns, t, NULL, "mount_setattr", errno);
			close(t->clone_fd);
			t->clone_fd = -1;
			return -1;
		}
		t->classic_attrs = 1;
	}
	return 0;
}

/* Kernels before 5.12: the same attributes with the classic API, on the attached mount. */
static int apply_classic_attrs(const struct target *t, const char **step)
{
	*step = "mount(MS_PRIVATE)";
	if (mount(NULL, t->path, NULL, MS_PRIVATE, NULL) < 0)
		return errno;
	/* A remount replaces the per-mount flags: keep the nosuid,nodev every FUSE mount has. */
	*step = "mount(MS_RDONLY)";
	if (t->read_only && mount(NULL, t->path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return errno;
	return 0;
}

/* Runs inside the container's mount namespace and root. Returns 1 when it failed. */
static int attach_clone(const char *ns, struct target *t)
{
	const char *how = "attach";
	const char *step = "move_mount";
	int err = 0;

	if (t->replace && !emulate_old_kernel) {
		/* Atomic swap: the clone goes beneath the dead mount, then the dead mount is detached. */
		if (sys_move_mount(t->clone_fd, "", AT_FDCWD, t->path, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) == 0) {
			how = "beneath";
			if (umount2(t->path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
				err = errno;
				step = "umount2";
			}
			goto done;
		}
		if (errno != EINVAL) {
			err = errno;
			goto done;
		}
	}
	if (t->replace) {
		/* No MOVE_MOUNT_BENEATH: move_mount onto a dead mount fails with ENOENT, so detach it first. */
		how = "detach-attach";
		if (umount2(t->path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
			err = errno;
			step = "umount2";
			goto done;
		}
	}
	if (sys_move_mount(t->clone_fd, "", AT_FDCWD, t->path, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		err = errno;
		goto done;
	}
	if (t->classic_attrs)
		err = apply_classic_attrs(t, &step);
done:
	return report(ns, t, how, step, err);
}

static int report_all(const char *ns, struct target *targets, int count, const char *step, int err)
{
	int failed = 0;
	for (int i = 0; i < count; i++)
		if (targets[i].clone_fd >= 0)
			failed += report(ns, &targets[i], NULL, step, err);
	return failed;
}

/* Enters the mount namespace and the root of <proc>/<pid>; returns 0 or the errno of *step. */
static int enter_container(const char *ns, const char **step)
{
	char path[4096];
	/* The process's root, not the namespace's: they differ for a chroot()ed container. */
	snprintf(path, sizeof(path), "%s/root", ns);
	*step = "open(root)";
	int root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return errno;
	snprintf(path, sizeof(path), "%s/ns/mnt", ns);
	*step = "open(ns/mnt)";
	int ns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ns_fd < 0)
		return errno;
	*step = "setns";
	if (setns(ns_fd, CLONE_NEWNS) < 0)
		return errno;
	*step = "chroot";
	if (fchdir(root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return errno;
	return 0;
}

/*
 * One namespace, in a child process: setns() and chroot() cannot be undone for the next namespace.
 * Every clone is prepared before the container is touched. Returns the number of failed targets.
 */
static int swap_namespace(const char *ns, struct target *targets, int count)
{
	int failed = 0;
	for (int i = 0; i < count; i++)
		failed += prepare_clone(ns, &targets[i]) < 0;
	if (failed == count)
		return failed;
	const char *step;
	int err = enter_container(ns, &step);
	if (err)
		return failed + report_all(ns, targets, count, step, err);
	for (int i = 0; i < count; i++)
		if (targets[i].clone_fd >= 0)
			failed += attach_clone(ns, &targets[i]);
	return failed;
}

/*
 * Reads one byte of each target inside the container, as its processes would. O_NONBLOCK: a FIFO
 * put there by the container must not hold the helper (a hung lxcfs does; the caller's timeout ends it).
 */
static int peek_namespace(const char *ns, struct target *targets, int count)
{
	const char *step;
	int err = enter_container(ns, &step);
	if (err) {
		for (int i = 0; i < count; i++)
			report(ns, &targets[i], NULL, step, err);
		return count;
	}
	int failed = 0;
	for (int i = 0; i < count; i++) {
		char byte;
		int fd = open(targets[i].path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			failed += report(ns, &targets[i], NULL, "open", errno);
			continue;
		}
		ssize_t n = read(fd, &byte, 1);
		err = n < 0 ? errno : n == 0 ? ENODATA : 0;
		close(fd);
		failed += report(ns, &targets[i], "read", "read", err);
	}
	return failed;
}

typedef int (*namespace_work)(const char *ns, struct target *targets, int count);

static int run_in_child(namespace_work work, const char *ns, struct target *targets, int count)
{
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		for (int i = 0; i < count; i++)
			report(ns, &targets[i], NULL, "fork", err);
		return 1;
	}
	if (pid == 0)
		_exit(work(ns, targets, count) ? 1 : 0);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/* ---- watch --------------------------------------------------------------------------------------- */

/*
 * Why epoll on /proc/<pid>/mountinfo: the kernel flags an open mountinfo with EPOLLPRI|EPOLLERR whenever
 * its mount namespace's table changed since the file was last polled (fs/proc_namespace.c, mounts_poll),
 * on every kernel the agent supports, and an idle node costs no read at all. The alternatives reach
 * fewer nodes or cost more: fanotify mount events (FAN_MNT_ATTACH/DETACH with FAN_MARK_MNTNS) need Linux
 * 6.15, fanotify groups are limited per user (fs.fanotify.max_user_groups, 128 by default) and a detach
 * event names a mount that is already gone; listmount/statmount need 6.8 (another namespace's only from
 * 6.11, by mnt_ns_id) and still cost syscalls per namespace on every sweep.
 *
 * An open mountinfo holds its mount namespace, and so every mount in it (mounts_open_common takes a
 * reference): a finished container's volumes could not be detached while we hold it. So each watch
 * also holds a pidfd of the process (Linux 5.3), and both are closed as soon as the process exits.
 */

struct watch {
	char key[256]; /* "" for a free slot */
	long pid;
	int mountinfo_fd;
	int pid_fd;
};

static struct watch *watches;
static size_t watch_slots;

/* epoll data: a watch's slot and which of its descriptors; stdin has its own value. */
#define WATCH_STDIN UINT64_MAX
#define WATCH_DATA(slot, is_pidfd) (((uint64_t)(slot) << 1) | (is_pidfd))

static void watch_line(struct line *l, const char *event, const struct watch *w)
{
	field_str(l, "event", event);
	field_str(l, "key", w->key);
	field_long(l, "pid", w->pid);
}

static void unwatch(struct watch *w)
{
	close(w->mountinfo_fd);
	close(w->pid_fd);
	w->key[0] = '\0';
}

static struct watch *find_watch(const char *key)
{
	for (size_t i = 0; i < watch_slots; i++)
		if (strcmp(watches[i].key, key) == 0)
			return &watches[i];
	return NULL;
}

/* A free slot, growing the table when every slot is taken; NULL without memory. */
static struct watch *free_slot(void)
{
	struct watch *w = find_watch("");
	if (w)
		return w;
	size_t slots = watch_slots ? watch_slots * 2 : 64;
	struct watch *grown = realloc(watches, slots * sizeof(*grown));
	if (!grown)
		return NULL;
	memset(grown + watch_slots, 0, (slots - watch_slots) * sizeof(*grown));
	watches = grown;
	w = &watches[watch_slots];
	watch_slots = slots;
	return w;
}

static void add_failed(const char *key, long pid, const char *step, int err)
{
	struct line l = {0};
	field_str(&l, "event", "added");
	field_str(&l, "key", key);
	field_long(&l, "pid", pid);
	field_error(&l, step, err);
	emit(&l);
}

/*
 * The pidfd is opened first: if the process exits (and its pid is reused) before mountinfo is opened,
 * the pidfd is already readable and the watch ends with "gone" right away. The namespace's link is
 * reported, so the caller can see it watches the namespace it meant.
 */
static void add_watch(int epoll_fd, const char *proc, const char *key, long pid)
{
	char path[4096], ns[256];
	struct watch *old = find_watch(key);
	if (old)
		unwatch(old);
	int pid_fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pid_fd < 0) {
		add_failed(key, pid, "pidfd_open", errno);
		return;
	}
	snprintf(path, sizeof(path), "%s/%ld/mountinfo", proc, pid);
	int mountinfo_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mountinfo_fd < 0) {
		int err = errno;
		close(pid_fd);
		add_failed(key, pid, "open(mountinfo)", err);
		return;
	}
	snprintf(path, sizeof(path), "%s/%ld/ns/mnt", proc, pid);
	ssize_t n = readlink(path, ns, sizeof(ns) - 1);
	struct watch *w = n < 0 ? NULL : free_slot();
	const char *step = n < 0 ? "readlink(ns/mnt)" : "realloc";
	int err = n < 0 ? errno : ENOMEM;
	if (w) {
		size_t slot = (size_t)(w - watches);
		struct epoll_event on_change = {.events = EPOLLPRI, .data.u64 = WATCH_DATA(slot, 0)};
		struct epoll_event on_exit = {.events = EPOLLIN, .data.u64 = WATCH_DATA(slot, 1)};
		step = "epoll_ctl";
		if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, mountinfo_fd, &on_change) == 0 && epoll_ctl(epoll_fd, EPOLL_CTL_ADD, pid_fd, &on_exit) == 0)
			err = 0;
		else
			err = errno;
	}
	if (err) {
		close(mountinfo_fd); /* closing also takes a descriptor out of the epoll set */
		close(pid_fd);
		add_failed(key, pid, step, err);
		return;
	}
	ns[n] = '\0';
	snprintf(w->key, sizeof(w->key), "%s", key);
	w->pid = pid;
	w->mountinfo_fd = mountinfo_fd;
	w->pid_fd = pid_fd;
	struct line l = {0};
	watch_line(&l, "added", w);
	field_bool(&l, "ok", 1);
	field_str(&l, "mntNs", ns);
	emit(&l);
}

/* One command line: "add <key> <pid>" or "remove <key>". */
static void watch_command(int epoll_fd, const char *proc, char *line)
{
	char *save = NULL;
	char *cmd = strtok_r(line, " ", &save);
	char *key = strtok_r(NULL, " ", &save);
	char *pid = strtok_r(NULL, " ", &save);
	char *end = NULL;
	long pid_number = pid ? strtol(pid, &end, 10) : 0;
	if (cmd && key && strcmp(cmd, "remove") == 0 && !pid) {
		struct watch *w = find_watch(key);
		if (w)
			unwatch(w);
	} else if (cmd && key && strcmp(cmd, "add") == 0 && pid && *end == '\0' && pid_number > 0 && strlen(key) < sizeof(watches->key)) {
		add_watch(epoll_fd, proc, key, pid_number);
	} else {
		struct line l = {0};
		field_str(&l, "event", "refused");
		field_str(&l, "line", line);
		field_error(&l, "parse", EINVAL);
		emit(&l);
	}
}

/* Reads what stdin has and runs every complete line; returns 0 once stdin has ended. */
static int read_commands(int epoll_fd, const char *proc)
{
	static char buf[65536];
	static size_t len;
	ssize_t n = read(STDIN_FILENO, buf + len, sizeof(buf) - 1 - len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return 0;
	len += (size_t)n;
	buf[len] = '\0';
	char *start = buf;
	for (char *nl; (nl = strchr(start, '\n')) != NULL; start = nl + 1) {
		*nl = '\0';
		watch_command(epoll_fd, proc, start);
	}
	len -= (size_t)(start - buf);
	memmove(buf, start, len);
	if (len == sizeof(buf) - 1)
		len = 0; /* no command is this long: drop it */
	return 1;
}

static int cmd_watch(const char *proc)
{
	/* Two descriptors per container: take the hard limit (an add past it reports EMFILE). */
	struct rlimit files;
	if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
		files.rlim_cur = files.rlim_max;
		setrlimit(RLIMIT_NOFILE, &files);
	}
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event on_input = {.events = EPOLLIN, .data.u64 = WATCH_STDIN};
	if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &on_input) < 0)
		return emit_result("epoll", errno);
	for (;;) {
		struct epoll_event events[64];
		int n = epoll_wait(epoll_fd, events, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return emit_result("epoll_wait", errno);
		int input = 0;
		for (int i = 0; i < n; i++) {
			if (events[i].data.u64 == WATCH_STDIN) {
				input = 1;
				continue;
			}
			struct watch *w = &watches[events[i].data.u64 >> 1];
			if (w->key[0] == '\0')
				continue; /* dropped by an earlier event of this batch */
			int exited = events[i].data.u64 & 1;
			struct line l = {0};
			watch_line(&l, exited ? "gone" : "changed", w);
			/* Closed before it is said: "gone" means the namespace is no longer held. */
			if (exited)
				unwatch(w);
			emit(&l);
		}
		/* Commands last: an add may reuse a slot that this batch's events still name. */
		if (input && !read_commands(epoll_fd, proc))
			return 0;
	}
}

/* ---- cgroups ------------------------------------------------------------------------------------- */

/*
 * Why inotify on the cgroup hierarchy: every container runtime makes a cgroup directory per container
 * (mkdir, which the kernel reports as IN_CREATE on the parent) before the container's processes exist,
 * on cgroup v1 and v2 alike, so a new container is noticed without scanning /proc. inotify is not
 * recursive: each directory is watched, and a new one is watched (and walked, for what was made in it
 * meanwhile) as soon as it is reported. Only IN_CREATE is asked for: removals, and the cgroup files that
 * change all the time (memory.events, cgroup.events), cost no wake-up. A removed directory's watch ends
 * by itself (IN_IGNORED).
 */

struct dir_watch {
	int wd;
	char *path;
};

/* Sorted by wd: the kernel hands out increasing numbers, so an insert is nearly always an append. */
static struct dir_watch *dir_watches;
static size_t dir_count, dir_slots;
static int dir_failed_errno;
static const char *dir_failed_step;

/* Index of wd, or of where it would go. */
static size_t dir_find(int wd)
{
	size_t lo = 0, hi = dir_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (dir_watches[mid].wd < wd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void dir_forget(int wd)
{
	size_t i = dir_find(wd);
	if (i == dir_count || dir_watches[i].wd != wd)
		return;
	free(dir_watches[i].path);
	memmove(&dir_watches[i], &dir_watches[i + 1], (dir_count - i - 1) * sizeof(*dir_watches));
	dir_count--;
}

static void dir_failed(const char *step, int err)
{
	if (!dir_failed_errno) {
		dir_failed_step = step;
		dir_failed_errno = err;
	}
}

/*
 * Watches `path` and every directory below it; failures are kept in dir_failed_*. With `report`, each
 * directory not watched before is printed as created: those made in a new one before its watch began
 * had no event of their own.
 */
static void watch_tree(int inotify_fd, const char *path, int report)
{
	int wd = inotify_add_watch(inotify_fd, path, IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0) {
		/* Gone meanwhile: nothing to watch. */
		if (errno != ENOENT)
			dir_failed("inotify_add_watch", errno);
		return;
	}
	size_t i = dir_find(wd);
	if (i == dir_count || dir_watches[i].wd != wd) {
		if (dir_count == dir_slots) {
			size_t slots = dir_slots ? dir_slots * 2 : 256;
			struct dir_watch *grown = realloc(dir_watches, slots * sizeof(*grown));
			if (!grown) {
				inotify_rm_watch(inotify_fd, wd);
				dir_failed("realloc", ENOMEM);
				return;
			}
			dir_watches = grown;
			dir_slots = slots;
		}
		char *copy = strdup(path);
		if (!copy) {
			inotify_rm_watch(inotify_fd, wd);
			dir_failed("strdup", ENOMEM);
			return;
		}
		memmove(&dir_watches[i + 1], &dir_watches[i], (dir_count - i) * sizeof(*dir_watches));
		dir_watches[i] = (struct dir_watch){.wd = wd, .path = copy};
		dir_count++;
		if (report) {
			struct line l = {0};
			field_str(&l, "event", "created");
			field_str(&l, "path", path);
			emit(&l);
		}
	}
	DIR *dir = opendir(path);
	if (!dir) {
		if (errno != ENOENT)
			dir_failed("opendir", errno);
		return;
	}
	for (struct dirent *e; (e = readdir(dir)) != NULL;) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char child[4096];
		if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >= (int)sizeof(child))
			continue; /* no cgroup path is this long */
		watch_tree(inotify_fd, child, report);
	}
	closedir(dir);
}

/* Reports a failure kept by watch_tree() once; returns whether there was one. */
static int report_incomplete(const char *event)
{
	if (!dir_failed_errno)
		return 0;
	struct line l = {0};
	field_str(&l, "event", event);
	field_long(&l, "watched", (long)dir_count);
	field_error(&l, dir_failed_step, dir_failed_errno);
	emit(&l);
	dir_failed_errno = 0;
	return 1;
}

static void cgroup_events(int inotify_fd, const char *root)
{
	/* Aligned for struct inotify_event, as inotify(7) shows. */
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n = read(inotify_fd, buf, sizeof(buf));
	for (char *p = buf; n > 0 && p < buf + n;) {
		const struct inotify_event *e = (const struct inotify_event *)p;
		p += sizeof(*e) + e->len;
		struct line l = {0};
		if (e->mask & IN_Q_OVERFLOW) {
			field_str(&l, "event", "overflow");
			emit(&l);
			watch_tree(inotify_fd, root, 1);
		} else if (e->mask & IN_IGNORED) {
			dir_forget(e->wd);
		} else if ((e->mask & IN_CREATE) && (e->mask & IN_ISDIR) && e->len > 0) {
			size_t i = dir_find(e->wd);
			if (i == dir_count || dir_watches[i].wd != e->wd)
				continue;
			char path[4096];
			if (snprintf(path, sizeof(path), "%s/%s", dir_watches[i].path, e->name) >= (int)sizeof(path))
				continue;
			watch_tree(inotify_fd, path, 1);
		}
	}
	report_incomplete("incomplete");
}

static int cmd_cgroups(const char *root)
{
	int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (inotify_fd < 0 || epoll_fd < 0)
		return emit_result("inotify_init1", errno);
	struct epoll_event on_input = {.events = EPOLLIN, .data.u64 = 0};
	struct epoll_event on_event = {.events = EPOLLIN, .data.u64 = 1};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &on_input) < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, inotify_fd, &on_event) < 0)
		return emit_result("epoll_ctl", errno);
	watch_tree(inotify_fd, root, 0);
	if (dir_count == 0 && !dir_failed_errno)
		dir_failed("inotify_add_watch", ENOENT);
	if (!report_incomplete("ready")) {
		struct line l = {0};
		field_str(&l, "event", "ready");
		field_bool(&l, "ok", 1);
		field_long(&l, "watched", (long)dir_count);
		emit(&l);
	}
	for (;;) {
		struct epoll_event events[2];
		int n = epoll_wait(epoll_fd, events, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return emit_result("epoll_wait", errno);
		for (int i = 0; i < n; i++) {
			if (events[i].data.u64 == 1) {
				cgroup_events(inotify_fd, root);
				continue;
			}
			char discard[4096];
			ssize_t got = read(STDIN_FILENO, discard, sizeof(discard));
			if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
				return 0;
		}
	}
}

static int usage(void)
{
	fprintf(stderr,
		"usage: lxcfs-remount check | read <file> | probe <file> | tmpfs <dir> <options> | bind <source> <target> |\n"
		"       detach <path> | swap --ns <proc>/<pid> <source> <target> ro|rw replace|attach ... [--ns ...] |\n"
		"       peek --ns <proc>/<pid> <target>... [--ns ...] | watch <proc> | cgroups <dir>\n");
	return 2;
}

/*
 * Runs `work` per namespace on "--ns <proc>/<pid> <target args>... [--ns ...]", where each target takes
 * `per_target` arguments: 4 for swap (source target ro|rw replace|attach), 1 for peek (target).
 */
static int for_each_namespace(int argc, char **argv, int per_target, namespace_work work)
{
	struct target *targets = calloc((size_t)argc / (size_t)per_target + 1, sizeof(*targets));
	int failed = 0;
	if (!targets)
		return emit_result("calloc", ENOMEM);
	for (int i = 0; i < argc;) {
		if (strcmp(argv[i], "--ns") != 0 || i + 1 >= argc) {
			free(targets);
			return usage();
		}
		const char *ns = argv[i + 1];
		int count = 0;
		for (i += 2; i < argc && strcmp(argv[i], "--ns") != 0; i += per_target) {
			if (i + per_target - 1 >= argc) {
				free(targets);
				return usage();
			}
			targets[count++] = per_target == 1
				? (struct target){.path = argv[i], .clone_fd = -1}
				: (struct target){
					.source = argv[i],
					.path = argv[i + 1],
					.read_only = strcmp(argv[i + 2], "ro") == 0,
					.replace = strcmp(argv[i + 3], "replace") == 0,
					.clone_fd = -1,
				};
		}
		failed |= run_in_child(work, ns, targets, count);
	}
	free(targets);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	if (strcmp(cmd, "check") == 0 && argc == 2)
		return cmd_check();
	if (strcmp(cmd, "read") == 0 && argc == 3)
		return cmd_read(argv[2]);
	if (strcmp(cmd, "probe") == 0 && argc == 3)
		return cmd_probe(argv[2]);
	if (strcmp(cmd, "tmpfs") == 0 && argc == 4)
		return cmd_tmpfs(argv[2], argv[3]);
	if (strcmp(cmd, "bind") == 0 && argc == 4)
		return cmd_bind(argv[2], argv[3]);
	if (strcmp(cmd, "detach") == 0 && argc == 3)
		return cmd_detach(argv[2]);
	if (strcmp(cmd, "swap") == 0) {
		emulate_old_kernel = getenv("LXCFS_REMOUNT_EMULATE_OLD_KERNEL") != NULL;
		return for_each_namespace(argc - 2, argv + 2, 4, swap_namespace);
	}
	if (strcmp(cmd, "watch") == 0 && argc == 3)
		return cmd_watch(argv[2]);
	if (strcmp(cmd, "cgroups") == 0 && argc == 3)
		return cmd_cgroups(argv[2]);
	if (strcmp(cmd, "peek") == 0)
		return for_each_namespace(argc - 2, argv + 2, 1, peek_namespace);
	return usage();
}

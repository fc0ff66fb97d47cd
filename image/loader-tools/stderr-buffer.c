/*
 * Linked into the minimal loader's static atftp (s390-pxelinux's
 * loader_tools): with _STDBUF_E set, stderr is fully buffered, as
 * coreutils' libstdbuf.so does for the dynamically linked atftp when the
 * guest preloads it. A static program takes no LD_PRELOAD, and atftp's
 * --trace, which the guest's tsize check reads, writes a line per packet
 * to stderr: unbuffered, that is a write(2) per packet. exit() flushes the
 * buffer, as with libstdbuf.
 */
#include <stdio.h>
#include <stdlib.h>

static char stderr_buffer[65536];

__attribute__((constructor)) static void buffer_stderr(void)
{
	if (getenv("_STDBUF_E") != NULL)
		setvbuf(stderr, stderr_buffer, _IOFBF, sizeof stderr_buffer);
}

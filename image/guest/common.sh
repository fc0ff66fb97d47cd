# shellcheck shell=sh
# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034
# common.sh: shared helpers of the guest PXELINUX client, sourced by init
# and boot (dhcp-event takes only its exported paths). Owns console
# markers, kernel command-line knobs, the lease file, PXELINUX path
# resolution and transfers (tftp/wget). Must not parse configuration files
# (config.awk does) nor decide what to boot (boot).
#
# Test hooks (all default to the real guest): PXE_ROOT prefixes every file
# the client reads or writes (/proc, /sys, /etc/pxe, /run, /tmp); PXE_BIN
# prefixes every command that touches the machine or the network (tftp,
# wget, kexec, udhcpc, mount, insmod, ip, reboot, setsid, sleep); PXE_SH is
# the shell the tests' udhcpc stub runs dhcp-event with (udhcpc itself runs
# it by its #! line); PXE_LIB is where the scripts live;
# PXE_CHECK_IMAGES=0 skips the kernel/initrd content checks (the client
# tests' corpus uses tiny text files as kernels).

PXE_ROOT=${PXE_ROOT:-}
PXE_LIB=${PXE_LIB:-/lib/pxe}
PXE_BIN=${PXE_BIN:-}
PXE_SH=${PXE_SH:-/bin/sh}
PXE_RUN=$PXE_ROOT/run/pxe
PXE_TMP=$PXE_ROOT/tmp/pxe
# a literal tab: $(printf '\t') would cost a process per script start
TAB='	'
NL='
'
export PXE_ROOT PXE_LIB PXE_BIN PXE_SH

# say TEXT: one console marker line.
say() { printf 'S390-PXELINUX: %s\n' "$*"; }
# err REASON: an ERROR marker.
err() { say "ERROR $*"; }
# debug TEXT: only with pxe.debug on the kernel command line.
debug() { if [ -n "$PXE_DEBUG" ]; then say "debug: $*"; fi; }
# pxe_sleep SECONDS
pxe_sleep() { "${PXE_BIN}sleep" "$1"; }

# pxe_num VALUE DEFAULT: VALUE if it is a decimal number, else DEFAULT.
pxe_num() {
	case $1 in
	'' | *[!0-9]*) echo "$2" ;;
	*) echo "$1" ;;
	esac
}

# pxe_knobs: reads pxe.* knobs from /proc/cmdline into PXE_IFACE,
# PXE_RETRIES, PXE_TIMEOUT, PXE_BLKSIZE, PXE_WINDOW, PXE_TFTP and PXE_DEBUG;
# PXE_STDBUF is libstdbuf's path when the image has it.
# PXE_TFTP is the TFTP client: atftp when the image has it (it reports the
# server's tsize and speaks RFC 7440 windowsize), else busybox tftp;
# pxe.tftp=busybox forces the latter.
pxe_knobs() {
	PXE_IFACE='' PXE_RETRIES=3 PXE_TIMEOUT=10 PXE_BLKSIZE=1468 PXE_WINDOW=8 PXE_DEBUG=''
	PXE_TFTP=busybox
	command -v "${PXE_BIN}atftp" >/dev/null 2>&1 && PXE_TFTP=atftp
	PXE_STDBUF=''
	[ -r "$PXE_ROOT/usr/libexec/coreutils/libstdbuf.so" ] &&
		PXE_STDBUF=$PXE_ROOT/usr/libexec/coreutils/libstdbuf.so
	[ -r "$PXE_ROOT/proc/cmdline" ] || return 0
	read -r _cmdline <"$PXE_ROOT/proc/cmdline" || true
	for w in $_cmdline; do
		case $w in
		pxe.iface=*) PXE_IFACE=${w#*=} ;;
		pxe.retries=*) PXE_RETRIES=$(pxe_num "${w#*=}" 3) ;;
		pxe.timeout=*) PXE_TIMEOUT=$(pxe_num "${w#*=}" 10) ;;
		pxe.blksize=*) PXE_BLKSIZE=$(pxe_num "${w#*=}" 1468) ;;
		pxe.window=*) PXE_WINDOW=$(pxe_num "${w#*=}" 8) ;;
		pxe.tftp=busybox) PXE_TFTP=busybox ;;
		pxe.debug | pxe.debug=1) PXE_DEBUG=1 ;;
		esac
	done
	[ "$PXE_TIMEOUT" -gt 0 ] || PXE_TIMEOUT=1
	[ "$PXE_WINDOW" -gt 0 ] || PXE_WINDOW=1
}

# pxe_backoff N: seconds to wait before retry round N (1, 2, ...): 2^N, at most 60.
pxe_backoff() {
	b=1 i=0
	while [ "$i" -lt "$1" ] && [ "$b" -lt 60 ]; do b=$((b * 2)) i=$((i + 1)); done
	[ "$b" -gt 60 ] && b=60
	echo "$b"
}

# pxe_load_lease FILE: reads a lease written by dhcp-event (key=value lines,
# never evaluated; L_IGNORED names the values it left out) and derives SERVER (option 66, else siaddr, else server
# identifier), BOOTFILE (option 67, else the header file field) and PREFIX
# (option 210 with a trailing slash, else pxe_bootfile_prefix of BOOTFILE).
pxe_load_lease() {
	L_IFACE='' L_IP='' L_SUBNET='' L_ROUTER='' L_DNS='' L_SIADDR='' L_SERVERID=''
	L_SNAME='' L_BOOT_FILE='' L_TFTP='' L_BOOTFILE='' L_209='' L_210='' L_211='' L_MAC=''
	L_IGNORED=''
	while IFS= read -r line; do
		k=${line%%=*} v=${line#*=}
		case $k in
		interface) L_IFACE=$v ;;
		ip) L_IP=$v ;;
		subnet) L_SUBNET=$v ;;
		router) L_ROUTER=$v ;;
		dns) L_DNS=$v ;;
		siaddr) L_SIADDR=$v ;;
		serverid) L_SERVERID=$v ;;
		sname) L_SNAME=$v ;;
		boot_file) L_BOOT_FILE=$v ;;
		tftp) L_TFTP=$v ;;
		bootfile) L_BOOTFILE=$v ;;
		pxeconffile) L_209=$v ;;
		pxepathprefix) L_210=$v ;;
		reboottime) L_211=$v ;;
		mac) L_MAC=$v ;;
		ignored) L_IGNORED=$v ;;
		esac
	done <"$1"
	[ "$L_SIADDR" = 0.0.0.0 ] && L_SIADDR=''
	SERVER=${L_TFTP:-${L_SIADDR:-$L_SERVERID}}
	BOOTFILE=${L_BOOTFILE:-$L_BOOT_FILE}
	if [ -n "$L_210" ]; then
		case $L_210 in
		*/) PREFIX=$L_210 ;;
		*) PREFIX=$L_210/ ;;
		esac
	else
		pxe_bootfile_prefix "$BOOTFILE"
	fi
}

# pxe_bootfile_prefix NAME: PREFIX = NAME up to and including its last
# character that is not a letter, digit, '.' or '-' (syslinux pxe.c
# get_prefix: boot/s390x/pxelinux.0 -> boot/s390x/; pxelinux.0 -> empty).
pxe_bootfile_prefix() {
	_d=${1%[!A-Za-z0-9.-]*}
	if [ "$_d" = "$1" ]; then
		PREFIX=''
	else
		_r=${1#"$_d"}
		PREFIX=$_d${_r%"${_r#?}"}
	fi
}

# _pxe_urltype NAME: syslinux urlparse.c url_type, decided by the first ':'
# of NAME: _UT=normal (followed by //: scheme://...), old (followed by ':':
# host::path or ::path) or suffix (anything else: the prefix is prepended).
_pxe_urltype() {
	case $1 in
	*:*)
		case ${1#*:} in
		//*) _UT=normal ;;
		:*) _UT=old ;;
		*) _UT=suffix ;;
		esac
		;;
	*) _UT=suffix ;;
	esac
}

# pxe_resolve SPEC PREFIX: a PXELINUX file name (syslinux pxe.c
# __pxe_searchdir with urlparse.c parse_url). Sets RES_KIND (tftp|url|
# unsupported), RES_SERVER (empty = boot server), RES_PORT, RES_PATH (the
# TFTP path, or the URL for wget), RES_DISPLAY and RES_REFUSED (non-empty
# for an empty TFTP path, one with a .. component, or an unknown scheme).
#   tftp://[user@]host[:port]/path   TFTP; path %XX-decoded, cut at ';'
#   http://... ftp://...             URL (wget), without its #fragment
#   other://...                      unknown scheme: never found
#   host::path ::path                TFTP on host (empty: boot server),
#                                    prefix bypassed
#   anything else, /path included    PREFIX + SPEC (a prefix that is no URL
#                                    or host:: name is ::PREFIX), classified
#                                    again
# Leading slashes are removed from TFTP paths.
pxe_resolve() {
	_pxe_urltype "$1"
	if [ "$_UT" = suffix ]; then
		_pxe_urltype "$2"
		if [ "$_UT" = suffix ]; then _f=::$2$1; else _f=$2$1; fi
		_pxe_urltype "$_f"
	else
		_f=$1
	fi
	RES_PORT=69 RES_SERVER='' RES_REFUSED=''
	case $_UT in
	old)
		RES_KIND=tftp RES_SERVER=${_f%%:*}
		_pxe_path "${_f#*::}"
		if [ -n "$RES_SERVER" ]; then RES_DISPLAY=$RES_SERVER::$RES_PATH; else RES_DISPLAY=$RES_PATH; fi
		;;
	*)
		RES_DISPLAY=$_f
		_r=${_f#*://}
		_a=${_r%%/*}
		case $_r in */*) _p=${_r#*/} ;; *) _p='' ;; esac
		_p=${_p%%#*}
		case ${_f%%:*} in
		tftp)
			RES_KIND=tftp
			_a=${_a#*@}
			RES_SERVER=${_a%%:*}
			case $_a in *:*) _pxe_port "${_a#*:}" ;; esac
			_p=${_p%%;*}
			case $_p in *%*) _p=$(_pxe_unescape "$_p") ;; esac
			_pxe_path "$_p"
			;;
		http | ftp) RES_KIND=url RES_PATH=${_f%%#*} ;;
		*) RES_KIND=unsupported RES_PATH='' RES_REFUSED=1 ;;
		esac
		;;
	esac
	if [ "$RES_KIND" = tftp ]; then
		case "/$RES_PATH/" in
		// | */../*) RES_REFUSED=1 ;;
		esac
	fi
}
# _pxe_path PATH: RES_PATH = PATH without its leading slashes
_pxe_path() {
	RES_PATH=$1
	while :; do
		case $RES_PATH in
		/*) RES_PATH=${RES_PATH#/} ;;
		*) break ;;
		esac
	done
}
# _pxe_port TEXT: RES_PORT = the leading digits of TEXT, or 69 when there
# are none or they are not a port number (1..65535)
_pxe_port() {
	_d=${1%%[!0-9]*}
	while :; do
		case $_d in
		0?*) _d=${_d#0} ;;
		*) break ;;
		esac
	done
	if [ -n "$_d" ] && [ "${#_d}" -le 5 ] && [ "$_d" -ge 1 ] && [ "$_d" -le 65535 ]; then
		RES_PORT=$_d
	fi
}
# _pxe_unescape TEXT: %XX (two hex digits) decoded, as syslinux url_unescape;
# %00 ends the text (the C string ends there)
_pxe_unescape() {
	printf '%s\n' "$1" | awk '{
		s = $0; o = ""; x = "0123456789abcdef"
		while ((i = index(s, "%")) > 0) {
			o = o substr(s, 1, i - 1)
			h = tolower(substr(s, i + 1, 2))
			if (h ~ /^[0-9a-f][0-9a-f]$/) {
				v = (index(x, substr(h, 1, 1)) - 1) * 16 + index(x, substr(h, 2, 1)) - 1
				if (v == 0) { s = ""; break }
				o = o sprintf("%c", v)
				s = substr(s, i + 3)
			} else {
				o = o "%"
				s = substr(s, i + 1)
			}
		}
		printf "%s", o s
	}'
}

# pxe_fetch SPEC PREFIX LOCAL RETRIES: resolves SPEC and downloads it to
# LOCAL. Returns 0 on success, 1 when the server says the file does not
# exist (or the path is refused), 2 on other failures after RETRIES retries
# with backoff. TFTP asks for block size PXE_BLKSIZE, the transfer size and
# (atftp) window PXE_WINDOW first, and retries without options when that
# fails. A server-announced tsize that differs from what arrived is a
# failed transfer (retried). FETCHED_SIZE is the size the check stat'ed, or
# empty when the transfer that succeeded was not checked.
pxe_fetch() {
	pxe_resolve "$1" "$2"
	pxe_rm "$3"
	if [ -n "$RES_REFUSED" ]; then
		if [ "$RES_KIND" = unsupported ]; then
			say "unsupported URL scheme in '$RES_DISPLAY'"
		else
			say "refusing path '$RES_DISPLAY'"
		fi
		return 1
	fi
	_n=0
	while :; do
		FETCHED_SIZE=''
		if [ "$RES_KIND" = url ]; then _pxe_wget "$3"; else _pxe_tftp "$3"; fi
		_rc=$?
		[ "$_rc" -ne 2 ] && return "$_rc"
		_n=$((_n + 1))
		[ "$_n" -gt "$4" ] && return 2
		_b=$(pxe_backoff "$_n")
		say "transfer of $RES_DISPLAY failed; retry $_n/$4 in ${_b}s"
		pxe_sleep "$_b"
	done
}
# pxe_probe SPEC PREFIX: fails only when the server says SPEC does not
# exist. With atftp as the client, a config lookup asks busybox tftp first:
# under TCG a miss costs ~9 ms with busybox and ~60 ms with atftp (a
# dynamically linked program); a hit is then fetched by atftp, with its
# tsize check. Any other outcome (timeout, URL, refused path) is left to
# pxe_fetch.
pxe_probe() {
	[ "$PXE_TFTP" = atftp ] || return 0
	pxe_resolve "$1" "$2"
	{ [ "$RES_KIND" = tftp ] && [ -z "$RES_REFUSED" ]; } || return 0
	_srv=${RES_SERVER:-$SERVER}
	_pxe_busybox "$PXE_TMP/probe" "$PXE_BLKSIZE" 2>"$PXE_TMP/probe.err"
	_rc=$?
	# a miss leaves no file (busybox tftp removes it): no rm process
	pxe_rm "$PXE_TMP/probe"
	[ "$_rc" = 0 ] && return 0
	! _pxe_tftp_missing "$PXE_TMP/probe.err"
}
# _pxe_tftp_missing ERRFILE: the client's stderr says the server refused the
# file: busybox prints error packets 1 (file not found) and 2 (access
# violation) by code, and its lines are read by the shell itself (grep
# would be a process per missing config name); atftp prints only the
# server's message, matched by grep without regard to case.
_pxe_tftp_missing() {
	while IFS= read -r _l; do
		case $_l in *'error: ('[12]')'*) return 0 ;; esac
	done <"$1"
	grep -Eiq 'error received from server <.*(not found|access violation|permission denied|no such file)' "$1"
}
# _pxe_tftp LOCAL: one TFTP download of RES_PATH. atftp keeps only the first
# 255 bytes of a remote file name (MAXLEN 256 in its tftp_def.h) and would
# ask for another file: a longer path goes to busybox tftp.
_pxe_tftp() {
	_srv=${RES_SERVER:-$SERVER}
	_tc=$PXE_TFTP
	[ "${#RES_PATH}" -gt 255 ] && _tc=busybox
	for _bs in "$PXE_BLKSIZE" 512; do
		debug "$_tc -g -l $1 -r $RES_PATH (blksize $_bs) $_srv $RES_PORT"
		if "_pxe_$_tc" "$1" "$_bs" 2>"$PXE_TMP/tftp.err"; then
			_pxe_check_tsize "$1" && return 0
			rm -f "$1"
			return 2
		fi
		rm -f "$1"
		debug "tftp: $(tail -n 3 "$PXE_TMP/tftp.err")"
		_pxe_tftp_missing "$PXE_TMP/tftp.err" && return 1
		[ "$_bs" = 512 ] && break
	done
	return 2
}
# The host follows "--": it comes from the network (option 209/210, a
# config's host::path or tftp://host/), and getopt would take a host such
# as "-h" (atftp: help, exit 0, nothing fetched) for an option.
_pxe_busybox() {
	if [ "$2" = 512 ]; then
		"${PXE_BIN}tftp" -g -l "$1" -r "$RES_PATH" -- "$_srv" "$RES_PORT"
	else
		"${PXE_BIN}tftp" -g -l "$1" -r "$RES_PATH" -b "$2" -- "$_srv" "$RES_PORT"
	fi
}
# atftp --trace logs every packet to stderr; its "received OACK" line holds
# the options the server accepted (tsize among them). stderr is unbuffered,
# a write per line: coreutils' libstdbuf (when the image has it) buffers it,
# ~0.4 s less per 9 MB under TCG. The port is explicit: the initramfs has
# no /etc/services.
_pxe_atftp() {
	if [ "$2" = 512 ]; then
		LD_PRELOAD=$PXE_STDBUF _STDBUF_E=65536 \
			"${PXE_BIN}atftp" --trace -g -l "$1" -r "$RES_PATH" -- "$_srv" "$RES_PORT" >/dev/null
	else
		LD_PRELOAD=$PXE_STDBUF _STDBUF_E=65536 \
			"${PXE_BIN}atftp" --trace --option "tsize 0" --option "blksize $2" \
			--option "windowsize $PXE_WINDOW" -g -l "$1" -r "$RES_PATH" -- "$_srv" "$RES_PORT" >/dev/null
	fi
}
# _pxe_check_tsize LOCAL: the size the server announced (atftp's OACK) must
# be the size received. The OACK answers the request, so the shell reads
# the trace only up to it or to the first DATA packet (no OACK: the server
# took no option): there is a line per packet after it (~1.3 MB for 60 MB),
# and a process (sed) per transfer costs more under TCG than these lines.
_pxe_check_tsize() {
	[ "$_tc" = atftp ] || return 0
	_ts=''
	while IFS= read -r _l; do
		case $_l in
		'received OACK <'*'tsize: '*)
			_ts=${_l##*tsize: }
			_ts=${_ts%%[!0-9]*}
			break
			;;
		'received DATA '*) break ;;
		esac
	done <"$PXE_TMP/tftp.err"
	_pxe_check_size "$1" tsize "$_ts"
}
# _pxe_check_size LOCAL WHAT ANNOUNCED: LOCAL has the ANNOUNCED bytes the
# server's WHAT (tsize, Content-Length) gave, or none was announced; else
# says so. One check for TFTP and HTTP. The sizes are compared as numbers:
# a length with leading zeros (0123, which wget reads as 123) is the same
# size; one too large for the shell's arithmetic is a mismatch.
_pxe_check_size() {
	[ -n "$3" ] || return 0
	_got=$(pxe_size "$1")
	debug "$2 $3, received $_got"
	[ "$3" -eq "$_got" ] 2>/dev/null && FETCHED_SIZE=$_got && return 0
	say "size mismatch for $RES_DISPLAY: server announced $3 bytes, received $_got"
	return 1
}
# _pxe_wget LOCAL: busybox wget of the URL RES_PATH, with -S so that the
# server's headers (HTTP) or replies (FTP) land in wget.err. Returns 0 when
# wget completed the file, 1 when the server says the file is not there
# (HTTP 4xx but 408 and 429; FTP 550), 2 on anything else: a 5xx, 408 or
# 429, a refused, cut or stalled connection (pxe_fetch retries those).
# wget itself reads at most the announced length (the final answer's
# Content-Length, the FTP SIZE reply "213 N") and exits 1 when fewer bytes
# arrive ("connection closed prematurely"), so a file it completes is
# whole; the announced length is read here only to report a short one.
# A connection that delivers no byte for pxe.timeout seconds is given up
# (_pxe_watchdog: this busybox's wget has no -T).
_pxe_wget() {
	debug "wget -q -S -O $1 $RES_PATH"
	"${PXE_BIN}wget" -q -S -O "$1" "$RES_PATH" 2>"$PXE_TMP/wget.err" &
	_wpid=$!
	_pxe_watchdog "$_wpid" "$1" &
	_wdog=$!
	wait "$_wpid"
	_rc=$?
	kill "$_wdog" 2>/dev/null
	wait "$_wdog" 2>/dev/null
	[ "$_rc" = 0 ] && return 0
	debug "wget exit $_rc: $(tail -n 3 "$PXE_TMP/wget.err")"
	_st=$(sed -n 's/.*server returned error: HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' \
		"$PXE_TMP/wget.err" | tail -n 1)
	case $_st in
	408 | 429) ;;
	4??) return 1 ;;
	esac
	grep -q ' 550 ' "$PXE_TMP/wget.err" && return 1
	case $RES_PATH in
	ftp://*)
		# -S shows the FTP replies: "213 N" answers wget's SIZE.
		_clw=SIZE
		_cl=$(sed -n 's/^213 \([0-9][0-9]*\)$/\1/p' "$PXE_TMP/wget.err" | tail -n 1)
		;;
	*)
		_clw=Content-Length
		# the final answer's length: a redirect's own Content-Length is
		# forgotten at the next status line (the final one may be chunked)
		_cl=$(awk '/^ *HTTP\// { cl = "" }
			tolower($0) ~ /^ *content-length: *[0-9]/ {
				sub(/^[^:]*: */, ""); sub(/[^0-9].*$/, ""); cl = $0
			}
			END { print cl }' "$PXE_TMP/wget.err")
		;;
	esac
	[ -f "$1" ] && _pxe_check_size "$1" "$_clw" "$_cl"
	pxe_rm "$1"
	return 2
}
# _pxe_watchdog PID FILE: kills PID (the wget writing FILE) once FILE has
# not grown for PXE_TIMEOUT seconds. It ticks with the real sleep, not
# ${PXE_BIN}sleep: the client tests' sleep stub returns at once.
_pxe_watchdog() {
	_last=none _idle=0
	while sleep 1; do
		_now=$(stat -c %s "$2" 2>/dev/null)
		if [ "$_now" = "$_last" ]; then
			_idle=$((_idle + 1))
		else
			_idle=0 _last=$_now
		fi
		debug "watchdog: $RES_DISPLAY ${_now:-absent}, idle ${_idle}s"
		if [ "$_idle" -ge "$PXE_TIMEOUT" ]; then
			say "no data from $RES_DISPLAY for ${PXE_TIMEOUT}s; giving up this try"
			kill "$1" 2>/dev/null
			return 0
		fi
	done
}

# pxe_magic FILE OFFSET COUNT: MAGIC = COUNT bytes at OFFSET, lower-case
# hex (fewer where the file ends). One od, its blanks removed by the shell:
# under TCG each process costs more than the reading.
pxe_magic() {
	MAGIC=$(od -An -tx1 -j "$2" -N "$3" "$1" 2>/dev/null)
	while :; do
		case $MAGIC in
		*[!0-9a-f]*) MAGIC=${MAGIC%%[!0-9a-f]*}${MAGIC#*[!0-9a-f]} ;;
		*) break ;;
		esac
	done
}

# pxe_check_image KIND FILE: fails with WHY set to why FILE cannot be a KIND
# (kernel or initrd), or succeeds (WHY is then not set). A kernel is an
# s390 Linux image ("S390EP" at 0x10008; kexec on s390 loads any file and
# would jump into it). An initrd is what Linux can unpack or mount: a
# newc/odc cpio archive, gzip, xz, zstd, bzip2, lzma, lz4 or lzo data, or a
# cramfs, squashfs, romfs or ext2 image, or zero padding (which Linux
# skips).
pxe_check_image() {
	[ "${PXE_CHECK_IMAGES:-1}" = 0 ] && return 0
	if [ "$1" = kernel ]; then
		pxe_magic "$2" 65544 6
		[ "$MAGIC" = 533339304550 ] && return 0
		pxe_magic "$2" 0 8
		WHY="not an s390 Linux kernel image (no S390EP at 0x10008; starts with ${MAGIC:-nothing})"
		return 1
	fi
	pxe_magic "$2" 0 8
	_m=$MAGIC
	case $_m in
	303730373031* | 303730373032* | 303730373037* | 1f8b* | 1f9e* | fd377a585a00* | \
		28b52ffd* | 425a68* | 5d0000* | 02214c18* | 894c5a4f* | 453dcd28* | 68737173* | \
		2d726f6d3166732d*) return 0 ;;
	esac
	pxe_magic "$2" 1080 2
	[ "$MAGIC" = 53ef ] && return 0
	# Linux skips zero bytes before and between initramfs archives; what
	# follows the padding is left to the kernel (finding it would mean
	# reading the whole file, 60 MB in one scenario).
	[ "$_m" = 0000000000000000 ] && return 0
	WHY="not an initramfs or initrd image (cpio, compressed or filesystem; starts with ${_m:-nothing})"
	return 1
}

# pxe_size FILE: size in bytes (stat, not wc -c: busybox wc reads the
# whole file, ~0.35 s for a kernel under TCG).
pxe_size() { stat -c %s "$1"; }

# pxe_rm FILE: removes FILE if it is there (rm is a process under TCG, a
# test is not).
pxe_rm() {
	if [ -e "$1" ] || [ -L "$1" ]; then rm -f "$1"; fi
}

# pxe_rescue REASON: the rescue shell on the console (restarted forever when
# running as PID 1, so the kernel never panics).
pxe_rescue() {
	say "RESCUE $1"
	if [ "$$" = 1 ]; then
		while :; do
			"${PXE_BIN}setsid" cttyhack sh
			say "rescue shell exited; starting a new one"
		done
	fi
	exec "${PXE_BIN}setsid" cttyhack sh
}

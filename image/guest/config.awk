# config.awk: the PXELINUX configuration language for the guest client
# (busybox awk). Owns line normalisation, evaluation and entry selection,
# with exactly the semantics of the host model (image/src/pxelinux/config.rs),
# which are syslinux 6's (com32/elflink/ldlinux/readconfig.c, ldlinux.c,
# execute.c, kernel.c; the menu module's com32/menu/): see README.md.
# Must not fetch anything: INCLUDE is spliced by the boot script.
#
# mode=normalize  input: one raw config file (NUL bytes mapped to \001 by the
#                 caller), its name in the environment (PXE_CFG_NAME, for
#                 warnings; not -v, which would expand backslashes); output: "kw<TAB>arg" lines (default, ui, label,
#                 k.<image type>, initrd, append, ipappend, prompt, timeout,
#                 totaltimeout, ontimeout, onerror, include, say, implicit,
#                 allowoptions, menu.label, menu.default, menu.hide,
#                 menu.begin, menu.end, menu.separator) and "#warning<TAB>text"
#                 lines; with -v incfile=F, also "N<TAB>file" in F for each
#                 include at output line N (the splice points, without a
#                 second pass). With -v infofile=F and no INCLUDE in the
#                 file, the info pass follows in the same process (the
#                 environment of info), its output written to F: under TCG
#                 awk's parse of this script costs ~60 ms per run.
# mode=info       input: flattened directives, the environment of select
#                 (PXE_KIND unset); output: "prompt<TAB>0|1",
#                 "wait<TAB>S" (seconds, one decimal; empty: forever),
#                 "onerror<TAB>cmd", "nodefault<TAB>0|1", "say<TAB>text",
#                 then select's output for the default entry with each line
#                 prefixed "default." (so that a boot nobody is asked about
#                 needs no second pass over the config: 1/5 of the parse of
#                 a 10 000-label config under TCG), and last
#                 "label<TAB>name<TAB>menu label" (not hidden): a reader
#                 that needs no labels stops at the first.
# mode=select     input: flattened directives; environment: PXE_KIND
#                 (default|timeout|typed|onerror), PXE_CHOICE, PXE_IP,
#                 PXE_SERVER, PXE_GW, PXE_MASK, PXE_MAC (dash separated),
#                 PXE_UUID (valid UUID or empty); output: "error<TAB>reason"
#                 or the lines "label<TAB>…", "kernel<TAB>…", "initrd<TAB>a,b",
#                 "cmdline<TAB>…".

# emit LINE: one line of output (to stdout, or to the file DEST); NOUT
# counts them; with EVAL (normalize with an infofile) the line is also
# evaluated. busybox awk makes one write(2) per print, and under TCG every
# system call costs two full TLB flushes (docs/performance.md), so lines
# are written 64 at a time: 40 000 writes fewer for a 10 000-label config.
# flush() before END's exits.
function emit(line) {
	if (EVAL)
		directive(line)
	OUT = OUT line "\n"
	NOUT++
	if (++NBUF == 64)
		flush()
}
function flush() {
	if (NBUF) {
		if (DEST != "")
			printf "%s", OUT > DEST
		else
			printf "%s", OUT
	}
	OUT = ""
	NBUF = 0
}
function warn(text) { emit("#warning\t" name ":" NR ": " text) }

function trim(s) {
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}

# splits s at the first blank: sets W (word) and R (rest, left-trimmed)
function splitword(s) {
	if (match(s, /[ \t]/)) {
		W = substr(s, 1, RSTART - 1)
		R = substr(s, RSTART)
		sub(/^[ \t]+/, "", R)
	} else {
		W = s
		R = ""
	}
}

# atoi: optional sign, leading decimal digits (none: 0), clamped to ±999999999
function atoi(s,    neg, v) {
	neg = 0
	if (substr(s, 1, 1) == "-") { neg = 1; s = substr(s, 2) }
	else if (substr(s, 1, 1) == "+") s = substr(s, 2)
	if (!match(s, /^[0-9]+/))
		return 0
	s = substr(s, 1, RLENGTH)
	sub(/^0+/, "", s)
	v = (length(s) > 9) ? 999999999 : s + 0
	return neg ? -v : v
}

# strtoul(s, NULL, 0) in 32 bits: sign, 0x hex, 0 octal, decimal; a negative
# value wraps, an overflow gives all bits
function strtoul(s,    neg, base, v, i, d) {
	neg = 0
	if (substr(s, 1, 1) == "-") { neg = 1; s = substr(s, 2) }
	else if (substr(s, 1, 1) == "+") s = substr(s, 2)
	base = 10
	if (s ~ /^0[xX][0-9a-fA-F]/) { base = 16; s = substr(s, 3) }
	else if (substr(s, 1, 1) == "0") base = 8
	v = 0
	for (i = 1; i <= length(s); i++) {
		d = index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
		if (d < 0 || d >= base)
			break
		v = v * base + d
		if (v > 4294967295)
			return 4294967295
	}
	if (neg && v > 0)
		v = 4294967296 - v
	return v
}

function bit(v, b) { return int(v / b) % 2 == 1 }

# appends the blank-separated words of s to WORDS[1..NW]
function addwords(s,    a, k, i) {
	k = split(s, a, /[ \t]+/)
	for (i = 1; i <= k; i++)
		if (a[i] != "")
			WORDS[++NW] = a[i]
}

# comma list -> trimmed, non-empty items joined by ","
function initrdlist(s,    a, k, i, out, it) {
	k = split(s, a, ",")
	out = ""
	for (i = 1; i <= k; i++) {
		it = trim(a[i])
		if (it != "")
			out = (out == "" ? it : out "," it)
	}
	return out
}

# looking_at(line, "endtext") after leading blanks
function endtext(l,    c) {
	sub(/^[ \t]+/, "", l)
	if (tolower(substr(l, 1, 7)) != "endtext")
		return 0
	c = substr(l, 8, 1)
	return c == "" || c <= " " || c == DEL
}

# INCLUDE/MENU INCLUDE file [tag]: a tag makes the file a submenu
function include(arg,    f, tag) {
	splitword(arg)
	f = W
	tag = trim(R)
	if (tag != "")
		emit("menu.begin\t" tag)
	emit("include\t" f)
	NINC++
	if (incfile != "")
		print NOUT "\t" f > incfile
	if (tag != "")
		emit("menu.end\t")
}

BEGIN {
	split("default ui initrd append ipappend sysappend prompt timeout totaltimeout ontimeout onerror implicit allowoptions", kws, " ")
	for (i in kws)
		known[kws[i]] = 1
	split("none localboot kernel linux boot bss pxe fdimage comboot com32 config", kts, " ")
	for (i in kts)
		ktypes[kts[i]] = 1
	DEL = sprintf("%c", 127)
	name = ENVIRON["PXE_CFG_NAME"]
	EVAL = mode == "normalize" && infofile != ""
	implicit = 1
	allowopts = 1
	NOTHING = "nothing to boot: no DEFAULT and no LABEL"
}

mode == "normalize" {
	line = $0
	if ((i = index(line, "\r")) > 0)
		line = substr(line, 1, i - 1)
	if (intext) {
		if (endtext(line))
			intext = 0
		next
	}
	# a regex literal: busybox awk compiles a string used as a regex again
	# for every line (twice the time on the 10 000-label config)
	if (line ~ /[\001-\010\013-\037\177]/) { warn("ignoring line with control bytes"); next }
	if (length(line) > 4096) { warn("ignoring line longer than 4096 bytes"); next }
	sub(/^[ \t]+/, "", line)
	if (line == "" || substr(line, 1, 1) == "#")
		next
	splitword(line)
	kw = tolower(W)
	rest = R
	sub(/[ \t]+$/, "", rest)
	if (kw == "menu") {
		splitword(rest)
		sub_ = tolower(W)
		if (sub_ == "label") emit("menu.label\t" R)
		else if (sub_ == "default" || sub_ == "hide" || sub_ == "end" || sub_ == "separator") emit("menu." sub_ "\t")
		else if (sub_ == "begin") emit("menu.begin\t" R)
		else if (sub_ == "onerror") emit("onerror\t" R)
		else if (sub_ == "include") include(R)
		next
	}
	if (kw == "text") { intext = 1; next }
	if (kw == "include") { include(rest); next }
	if (kw == "say") { emit("say\t" substr(line, 5)); next }
	if (kw == "label") { splitword(rest); emit("label\t" W); next }
	if (kw in ktypes) { emit("k." kw "\t" rest); next }
	if (!(kw in known)) { warn("ignoring unknown keyword " kw); next }
	if (kw == "sysappend") kw = "ipappend"
	emit(kw "\t" rest)
	next
}

# readconfig.c record: an entry ends at the next LABEL, MENU BEGIN/END/
# SEPARATOR or the end; a label without APPEND takes the global one now
function record() {
	if (cur) {
		if (!hasapp[cur]) app[cur] = gapp
		if (app[cur] == "-") app[cur] = ""
		cur = 0
	}
}

{ directive($0) }

# directive LINE: one flattened "kw<TAB>arg" line into the entries and the
# globals; any other line is ignored
function directive(l,    t, kw, arg) {
	t = index(l, "\t")
	if (t == 0)
		return
	kw = substr(l, 1, t - 1)
	arg = substr(l, t + 1)
	if (kw == "label") {
		record()
		cur = ++n
		lname[n] = arg
		kern[n] = arg
		ktype[n] = "kernel"
		ipa[n] = gipa + 0
		depth[n] = dep + 0
		if (!(arg in idx)) idx[arg] = n
	}
	# the per-label keywords first: a big config is mostly these
	else if (substr(kw, 1, 2) == "k.") { if (cur) { kern[cur] = arg; ktype[cur] = substr(kw, 3) } }
	else if (kw == "initrd") { if (cur) { ird[cur] = arg; hasird[cur] = 1 } }
	else if (kw == "append") {
		if (cur) { app[cur] = arg; hasapp[cur] = 1 }
		else gapp = arg
	}
	else if (kw == "menu.begin") { record(); dep++ }
	else if (kw == "menu.end") { record(); if (dep > 0) dep-- }
	else if (kw == "menu.separator") record()
	else if (kw == "ipappend") {
		if (cur) ipa[cur] = strtoul(arg)
		else gipa = strtoul(arg)
	}
	else if (kw == "default") def = arg
	else if (kw == "ui") ui = arg
	else if (kw == "prompt") prompt = (atoi(arg) != 0)
	else if (kw == "timeout") { tmo = atoi(arg); if (tmo < 0) tmo = 0 }
	else if (kw == "totaltimeout") { ttmo = atoi(arg); if (ttmo < 0) ttmo = 0 }
	else if (kw == "ontimeout") ontimeout = arg
	else if (kw == "onerror") onerror = arg
	else if (kw == "say") says[++nsay] = arg
	else if (kw == "implicit") implicit = (atoi(arg) != 0)
	else if (kw == "allowoptions") allowopts = (atoi(arg) != 0)
	else if (kw == "menu.label") { if (cur) mlabel[cur] = arg }
	else if (kw == "menu.default") { if (cur) mdef[cur] = 1 }
	else if (kw == "menu.hide") { if (cur) hid[cur] = 1 }
}

# parse_image_type: what the file name's extension says
function imagetype(k) {
	if (k ~ /\.c32$/) return "com32"
	if (k ~ /\.bss$/) return "bss"
	if (k ~ /\.(bin|bs)$/) return "boot"
	if (k ~ /\.0$/) return "pxe"
	return "linux"
}

# menu (UI, or DEFAULT naming a .c32 module), cli (DEFAULT) or nodefault
function mode_of() {
	if (ui != "") return "menu"
	if (def != "") {
		splitword(def)
		return imagetype(W) == "com32" ? "menu" : "cli"
	}
	return "nodefault"
}

# the menu's default entry: with UI, the label DEFAULT names (not hidden);
# else the last visible top-level MENU DEFAULT; else the first visible
# top-level label; 0 = none
function menudefault(    i) {
	if (ui != "" && def != "") {
		splitword(def)
		if ((W in idx) && !hid[idx[W]])
			return idx[W]
	}
	for (i = n; i >= 1; i--)
		if (mdef[i] && depth[i] == 0 && !hid[i])
			return i
	for (i = 1; i <= n; i++)
		if (depth[i] == 0 && !hid[i])
			return i
	return 0
}

function fail(reason) { ERR = reason; return 0 }

function pick_default(    i) {
	if (mode_of() == "cli")
		return pick_command(def, 0)
	i = menudefault()
	if (!i)
		return fail(NOTHING)
	return pick_label(i, "")
}

# a command line: a label (its first word) plus extra options, or (IMPLICIT
# permitting; always for ONERROR) a kernel image plus options
function pick_command(line, onerr,    first, rest, t) {
	splitword(trim(line))
	first = W
	rest = R
	if (first == "")
		return fail(NOTHING)
	if (first in idx)
		return pick_label(idx[first], rest)
	if (!implicit && !onerr)
		return fail("no label " first " (IMPLICIT 0: not booted as a kernel image)")
	t = imagetype(first)
	if (t != "linux")
		return fail(first ": " toupper(t) " images are not available on s390x")
	LABEL = ""
	KERNEL = first
	NW = 0
	if (allowopts)
		addwords(rest)
	addsys(gipa)
	return 1
}

# record's command line: image options, APPEND, initrd=INITRD, SYSAPPEND,
# then the words typed after the label name
function pick_label(i, extra,    t, k, kopts) {
	t = ktype[i]
	splitword(trim(kern[i]))
	k = W
	kopts = R
	if (t == "kernel")
		t = imagetype(k)
	if (t == "localboot")
		return fail("label " lname[i] ": LOCALBOOT is not available")
	if (t != "linux")
		return fail("label " lname[i] ": " toupper(t) " images are not available on s390x")
	if (k == "")
		return fail("label " lname[i] " has an empty KERNEL")
	LABEL = lname[i]
	KERNEL = k
	NW = 0
	addwords(kopts)
	addwords(app[i])
	if (hasird[i]) {
		WORDS[++NW] = ird[i]
		ISIRD[NW] = 1
	}
	addsys(ipa[i])
	addwords(extra)
	return 1
}

function z(s) { return s == "" ? "0.0.0.0" : s }

# SYSAPPEND strings: 1 ip=, 2 BOOTIF=, 4 SYSUUID= (others: no source on s390x)
function addsys(b) {
	if (bit(b, 1))
		WORDS[++NW] = "ip=" z(ENVIRON["PXE_IP"]) ":" z(ENVIRON["PXE_SERVER"]) ":" z(ENVIRON["PXE_GW"]) ":" z(ENVIRON["PXE_MASK"])
	if (bit(b, 2))
		WORDS[++NW] = "BOOTIF=01-" ENVIRON["PXE_MAC"]
	if (bit(b, 4) && ENVIRON["PXE_UUID"] != "")
		WORDS[++NW] = "SYSUUID=" ENVIRON["PXE_UUID"]
}

END {
	record()
	if (EVAL) {
		flush()
		if (NINC)
			exit 0
		# no INCLUDE: what was just written is the flattened config
		EVAL = 0
		DEST = infofile
		mode = "info"
	}
	if (mode == "info") {
		m = mode_of()
		emit("prompt\t" ((prompt || m == "menu") ? 1 : 0))
		w = 0
		if (tmo > 0) w = tmo
		if (ttmo > 0 && (w == 0 || ttmo < w)) w = ttmo
		emit("wait\t" (w > 0 ? sprintf("%d.%d", int(w / 10), w % 10) : ""))
		emit("onerror\t" onerror)
		emit("nodefault\t" (m == "nodefault" ? 1 : 0))
		for (i = 1; i <= nsay; i++)
			emit("say\t" says[i])
	}
	if (mode != "select" && mode != "info") {
		flush()
		exit 0
	}
	pre = mode == "info" ? "default." : ""
	kind = ENVIRON["PXE_KIND"]
	choice = trim(ENVIRON["PXE_CHOICE"])
	if (kind == "onerror") ok = pick_command(choice, 1)
	else if (kind == "typed" && choice != "") ok = pick_command(choice, 0)
	else if (kind == "timeout" && ontimeout != "") ok = pick_command(ontimeout, 0)
	else ok = pick_default()
	if (ok)
		chosen(pre)
	else
		emit(pre "error\t" ERR)
	if (mode == "info")
		for (i = 1; i <= n; i++)
			if (!hid[i])
				emit("label\t" lname[i] "\t" mlabel[i])
	flush()
}

# the picked entry's lines, each prefixed by pre.
# new_linux_kernel: the initrds are the first initrd= word; every initrd=
# word is then removed (our choice)
function chosen(pre,    i, initrd, cmd) {
	initrd = ""
	for (i = 1; i <= NW; i++) {
		if (ISIRD[i]) { initrd = initrdlist(WORDS[i]); break }
		if (substr(WORDS[i], 1, 7) == "initrd=") { initrd = initrdlist(substr(WORDS[i], 8)); break }
	}
	cmd = ""
	for (i = 1; i <= NW; i++)
		if (!ISIRD[i] && substr(WORDS[i], 1, 7) != "initrd=")
			cmd = (cmd == "" ? WORDS[i] : cmd " " WORDS[i])
	emit(pre "label\t" LABEL)
	emit(pre "kernel\t" KERNEL)
	emit(pre "initrd\t" initrd)
	emit(pre "cmdline\t" cmd)
}

# config.awk: the PXELINUX configuration language for the guest client
# (busybox awk). Owns line normalisation, evaluation and entry selection,
# with exactly the semantics of the host model (image/src/pxelinux/config.rs).
# Must not fetch anything: INCLUDE is spliced by the boot script.
#
# mode=normalize  input: one raw config file (NUL bytes mapped to \001 by the
#                 caller); output: "kw<TAB>arg" lines (kernel, initrd, append,
#                 ipappend, default, label, prompt, timeout, totaltimeout,
#                 ontimeout, onerror, include, say, localboot, menu.label,
#                 menu.default, menu.hide) and "#warning<TAB>text" lines;
#                 with -v incfile=F, also "N<TAB>arg" in F for each include
#                 at output line N (the splice points, without a second pass).
# mode=info       input: flattened directives; output: "prompt<TAB>N",
#                 "wait<TAB>S" (empty: forever), "onerror<TAB>cmd",
#                 "label<TAB>name<TAB>menu label" (not hidden), "say<TAB>text".
# mode=select     input: flattened directives; environment: PXE_KIND
#                 (default|timeout|typed|command), PXE_CHOICE, PXE_IP,
#                 PXE_SERVER, PXE_GW, PXE_MASK, PXE_MAC (dash separated);
#                 output: "error<TAB>reason" or the lines "label<TAB>…",
#                 "kernel<TAB>…", "initrd<TAB>a,b", "cmdline<TAB>…".

# emit LINE: one line of normalised output; NOUT counts them
function emit(line) { print line; NOUT++ }
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

function num(s) {
	if (match(s, /^[0-9]+/)) {
		if (RLENGTH > 9)
			return 999999999
		return substr(s, 1, RLENGTH) + 0
	}
	return 0
}

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

BEGIN {
	split("default label kernel linux initrd append ipappend sysappend prompt timeout totaltimeout ontimeout onerror include say localboot", kws, " ")
	for (i in kws)
		known[kws[i]] = 1
}

mode == "normalize" {
	line = $0
	sub(/\r$/, "", line)
	if (line ~ /[^\t -~]/) { warn("ignoring line with non-printable bytes"); next }
	if (length(line) > 4096) { warn("ignoring line longer than 4096 bytes"); next }
	line = trim(line)
	if (line == "" || substr(line, 1, 1) == "#")
		next
	splitword(line)
	kw = tolower(W)
	if (kw == "menu") {
		arg = R
		splitword(arg)
		sub_ = tolower(W)
		if (sub_ == "label" || sub_ == "default" || sub_ == "hide")
			emit("menu." sub_ "\t" R)
		next
	}
	if (!(kw in known)) { warn("ignoring unknown keyword " kw); next }
	if (kw == "linux") kw = "kernel"
	if (kw == "sysappend") kw = "ipappend"
	emit(kw "\t" R)
	if (kw == "include" && incfile != "")
		print NOUT "\t" R > incfile
	next
}

{
	t = index($0, "\t")
	if (t == 0)
		next
	kw = substr($0, 1, t - 1)
	arg = substr($0, t + 1)
	if (kw == "default") def = arg
	else if (kw == "label") { n++; lname[n] = arg }
	else if (kw == "kernel") { if (n) kern[n] = arg }
	else if (kw == "initrd") { if (n) ird[n] = arg }
	else if (kw == "append") {
		if (n) { app[n] = arg; hasapp[n] = 1 }
		else gapp = (arg == "-" ? "" : arg)
	}
	else if (kw == "ipappend") {
		if (n) { ipa[n] = num(arg); hasipa[n] = 1 }
		else gipa = num(arg)
	}
	else if (kw == "prompt") prompt = num(arg)
	else if (kw == "timeout") tmo = num(arg)
	else if (kw == "totaltimeout") ttmo = num(arg)
	else if (kw == "ontimeout") ontimeout = arg
	else if (kw == "onerror") onerror = arg
	else if (kw == "say") says[++nsay] = arg
	else if (kw == "localboot") { if (n) lb[n] = 1 }
	else if (kw == "menu.label") { if (n) mlabel[n] = arg }
	else if (kw == "menu.default") { if (n && !mdef) mdef = n }
	else if (kw == "menu.hide") { if (n) hid[n] = 1 }
}

# the default choice: MENU DEFAULT label, DEFAULT (unless a .c32 module),
# the first label, or nothing
function choose_default(    w) {
	if (mdef)
		return pick_label(mdef, "")
	if (def != "") {
		splitword(def)
		w = tolower(W)
		if (!(length(w) >= 4 && substr(w, length(w) - 3) == ".c32"))
			return pick_command(def)
	}
	if (n >= 1)
		return pick_label(1, "")
	return fail("nothing to boot: no DEFAULT and no LABEL")
}

function fail(reason) { ERR = reason; return 0 }

# a command line: whole-line label, first-word label plus extra options, or
# a kernel path plus options
function pick_command(line,    i, first, rest) {
	line = trim(line)
	for (i = 1; i <= n; i++)
		if (lname[i] == line)
			return pick_label(i, "")
	splitword(line)
	first = W
	rest = R
	if (first == "")
		return fail("nothing to boot: no DEFAULT and no LABEL")
	for (i = 1; i <= n; i++)
		if (lname[i] == first)
			return pick_label(i, rest)
	LABEL = ""
	KARG = first
	IRD = ""
	APP = gapp
	IPA = gipa
	EXTRA = rest
	return 1
}

function pick_label(i, extra) {
	if (lb[i])
		return fail("label " lname[i] ": LOCALBOOT is not available")
	if (kern[i] == "")
		return fail("label " lname[i] " has no KERNEL")
	LABEL = lname[i]
	KARG = kern[i]
	IRD = ird[i]
	APP = gapp
	if (hasapp[i])
		APP = (app[i] == "-" ? "" : app[i])
	IPA = hasipa[i] ? ipa[i] : gipa
	EXTRA = extra
	return 1
}

END {
	if (mode == "info") {
		print "prompt\t" (prompt + 0)
		w = 0
		if (tmo > 0) w = tmo
		if (ttmo > 0 && (w == 0 || ttmo < w)) w = ttmo
		print "wait\t" (w > 0 ? int((w + 9) / 10) : "")
		print "onerror\t" onerror
		for (i = 1; i <= n; i++)
			if (!hid[i])
				print "label\t" lname[i] "\t" mlabel[i]
		for (i = 1; i <= nsay; i++)
			print "say\t" says[i]
	}
	if (mode != "select")
		exit 0
	kind = ENVIRON["PXE_KIND"]
	choice = trim(ENVIRON["PXE_CHOICE"])
	if (kind == "command") ok = pick_command(choice)
	else if (kind == "typed" && choice != "") ok = pick_command(choice)
	else if (kind == "timeout" && ontimeout != "") ok = pick_command(ontimeout)
	else ok = choose_default()
	if (!ok) {
		print "error\t" ERR
		exit 0
	}
	NW = 0
	addwords(KARG)
	kernel = WORDS[1]
	for (i = 2; i <= NW; i++)
		WORDS[i - 1] = WORDS[i]
	NW--
	addwords(APP)
	addwords(EXTRA)
	initrd = initrdlist(IRD)
	if (initrd == "")
		for (i = NW; i >= 1; i--)
			if (substr(WORDS[i], 1, 7) == "initrd=") {
				initrd = initrdlist(substr(WORDS[i], 8))
				break
			}
	cmd = ""
	for (i = 1; i <= NW; i++)
		if (substr(WORDS[i], 1, 7) != "initrd=")
			cmd = (cmd == "" ? WORDS[i] : cmd " " WORDS[i])
	if (IPA % 2 == 1)
		cmd = (cmd == "" ? "" : cmd " ") "ip=" ENVIRON["PXE_IP"] ":" ENVIRON["PXE_SERVER"] ":" ENVIRON["PXE_GW"] ":" ENVIRON["PXE_MASK"]
	if (int(IPA / 2) % 2 == 1)
		cmd = (cmd == "" ? "" : cmd " ") "BOOTIF=01-" ENVIRON["PXE_MAC"]
	print "label\t" LABEL
	print "kernel\t" kernel
	print "initrd\t" initrd
	print "cmdline\t" cmd
}

"""Build a `CriteriaTree` from a parsed policy: read the criteria sections line by line, open an
indication block at a numbered indication heading, a heading naming an indication or a "for the
treatment of X" lead-in, a branch at "Initial Therapy" / "Reauthorization" / "Dosing", and nest
AND/OR groups by the policy's own list markers and connectors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from diffing.extract import memo
from diffing.extract.durations import remembered_durations
from diffing.model import Evidence, PolicyDocument, Section, Table
from diffing.parse.sections import (
    CRITERIA,
    looks_like_heading,
    section_name,
    section_role,
    section_roles,
)
from diffing.tree.leaves import (
    diagnosis_leaf,
    duration_as_written,
    is_bare_term,
    remembered_leaves,
    step_leaf,
    strip_connector,
)
from diffing.tree.nodes import (
    ALL,
    ANY,
    CONTINUATION,
    DOSING_BRANCH,
    EXCLUSION,
    EXCLUSION_BRANCH,
    GENERAL,
    INITIAL,
    CriteriaBranch,
    CriteriaGroup,
    CriteriaTree,
    CriterionLeaf,
    IndicationBlock,
)

_MARKERS = (
    ("paren_num", re.compile(r"^\((\d{1,2})\)\s*")),
    ("roman", re.compile(r"^([ivx]{1,5})[.)]\s+")),
    ("upper_paren", re.compile(r"^([A-Z])\)\s*")),
    ("lower_paren", re.compile(r"^([a-z])\)\s*")),
    ("number", re.compile(r"^(\d{1,2})[.)]\s*(?=\S)")),
    ("upper_dot", re.compile(r"^([A-Z])\.\s+")),
    ("lower_dot", re.compile(r"^([a-z])\.\s+")),
    # one style per bullet character: a PDF's "o" items and the "•" items under them nest
    ("bullet", re.compile(r"^([-–•*·▪◦●○■□o])\s+")),
)
_ALL_OF = re.compile(
    r"\b(?:ALL|BOTH|each) of the following\b|\bthe following (?:criteria|requirements|regimens)"
    r"(?: are met)?\s*\((?:[a-z0-9ivx]+,?\s*)+and\b",
    re.IGNORECASE,
)
_ANY_OF = re.compile(
    r"\b(?:(?:at least )?ONE|ANY|either) of the following\b|\bone of the following\b"
    r"|\bat least one of the following\b|\(\s*[a-z0-9ivx]+\s+or\s+[a-z0-9ivx]+\s*\)",
    re.IGNORECASE,
)
_OF_THE_FOLLOWING = re.compile(r"\bof the following\b|\bthe following\b[^.]*:\s*$", re.I)
_INDICATION_LINE = re.compile(
    r"^(?P<name>[A-Z][^.:]{2,90}?)(?:\.\s+|\s+)(?=Approve\b|Criteria\b|Initial\b)"
)
_TRIED_LEAD = re.compile(
    r"\b(?:tried|trial of|failure (?:of|to)|failure, contraindication|previously treated with)\b"
    r"[^:]*\bthe following\b",
    re.IGNORECASE,
)
_DRUG_CRITERIA = re.compile(r"^(?:Additional\s+)?(?P<name>.+?)\s+Criteria$")
_PHASE_WORDS = re.compile(
    r"\b(?:clinical pa|preferred|non-preferred|subsequent|initial|continuation|renewal"
    r"|re-?authori[sz]ation|step therapy|quantity|prior authori[sz]ation|general|coverage)\b",
    re.IGNORECASE,
)
_CITATION_LINE = re.compile(r"^\d{1,3}(?:\s*[,\-–]\s*\d{1,3})+$")  # "1,57, 62" wrapped alone
_CITED = re.compile(r":\s*\d[\d,\s\-–]*$")
_LEAD_IN = re.compile(
    r"\bfor the treatment of\s+(?P<name>[a-z][a-z'’ -]{2,60}?)"
    r"(?=\s+(?:when|if|in|and|is|are)\b|[:,;(])",
    re.IGNORECASE,
)
_COVERAGE_STATEMENT = re.compile(
    r"^(?:The use of\s+)?(?P<name>.{3,90}?)\s+(?:\(.*?\)\s*)?(?:is|are) (?:proven and )?medically"
    r" necessary\b.*\b(?:any|all|one) of the following:?\s*$",
    re.IGNORECASE,
)
_CONSIDERS = re.compile(
    r"^(?:[A-Z][A-Za-z]+ )?considers (?:the )?(?P<name>.{3,120}?)(?:\s*\(e\.g\.[^)]*\))?"
    r" (?:to be )?medically necessary\b(?P<rest>.*)$"
)
_FOR_INDICATIONS = re.compile(
    r"^(?P<name>[A-Z][^:;]{2,90}?)(?:\s*\(e\.g\.[^:]*\))?\s+for the following"
    r" (?:indications|conditions|diagnoses)\s*:\s*$"
)
_FOR_MEMBERS = re.compile(
    r"^(?P<name>[A-Za-z0-9/()+\-*:,. ]{3,80}?)(?:\s*\(e\.g\..*?\))?\s+(?:for|in)"
    r" (?:members|women|men|persons|individuals|patients)\b(?P<rest>.*)$"
)
_CONTINUATION = re.compile(
    r"\b(?:currently receiving|re-?authori[sz]ation|continuation|continued therapy|renewal"
    r"|subsequent authori[sz]ation|reapproval|re-?certification)\b",
    re.IGNORECASE,
)
_INITIAL = re.compile(r"\binitial (?:therapy|authori[sz]ation|requests?|approval|criteria)\b", re.I)
_DOSING = re.compile(r"^(?:dosing|dosage|dose)\b", re.IGNORECASE)
_NOT_COVERED = re.compile(
    r"\b(?:conditions not covered|not medically necessary|exclusions?|experimental"
    r"|investigational|unproven)\b",
    re.I,
)
_APPROVAL = re.compile(
    r"\b(?:approve for|approved for|authori[sz]ation length|length of authori[sz]ations?"
    r"|initial requests?|approval (?:duration|length)|authori[sz]ed for"
    r"|(?:re-?)?authori[sz]ation (?:will be|is) (?:approved )?for)\b\W{0,4}"
    r"(?:up to\s+|no more than\s+|a maximum of\s+)?"
    r"(?P<amount>\d+|one|two|three|four|six|twelve)\s*(?P<unit>days?|weeks?|months?"
    r"|years?)",
    re.IGNORECASE,
)
_APPROVAL_STATEMENT = re.compile(
    r"^(?:initial |continued )?(?:re-?)?authori[sz]ation (?:will be|is) (?:approved )?for\b", re.I
)
_NOTE = re.compile(r"^(?:Note|Notes|NOTE|Examples?)\b\s*:?", re.IGNORECASE)
_QUALIFIER = re.compile(r"^For (?:any |non-preferred |brand |patients? )?[^:]{3,80}:\s")


_stripped = memo.per_short_text(strip_connector)


def _is_table_row(line: str) -> bool:
    """A table row as parsed text prints it: cells joined by " | " (Markdown's outer pipes may
    have been cleaned away)."""
    return line.startswith("|") or " | " in line


# "… in at least one of the following: size, depth, and/or number of lesions": the list is
# written inline, so the item is one criterion, not a group opener
_INLINE_LIST = re.compile(r"\bthe following\b[^:]*:\s*\S+(?:\s+\S+){1,}")
# "Patient has arthritis … AND has tried at least ONE DMARD": two criteria in one item
_BOTH = re.compile(r"\s+AND\s+(?=(?:has|have|is|are|was|were|the patient|patient)\b)")
_CONNECTOR_LINE = re.compile(r"^\W*(AND|OR|and|or)\W*$")


@dataclass(kw_only=True)
class _Group:
    op: str | None
    text: str = ""
    children: list[_Group | CriterionLeaf] = field(default_factory=list)
    connectors: list[str] = field(default_factory=list)
    # "History of failure to one of the following conventional therapies:": its items are
    # the therapies tried, not conditions
    of_therapies: bool = False

    def freeze(self) -> CriteriaGroup:
        op = self.op or (ANY if "or" in self.connectors and "and" not in self.connectors else ALL)
        children: list[CriteriaGroup | CriterionLeaf] = []
        for child in self.children:
            if isinstance(child, _Group):
                frozen = child.freeze()
                if not frozen.children:
                    continue
                # A one-child group says nothing: lift its child.
                children.append(frozen.children[0] if len(frozen.children) == 1 else frozen)
            else:
                children.append(child)
        return CriteriaGroup(op=op, children=tuple(children), text=self.text)


@dataclass(kw_only=True)
class _Branch:
    phase: str
    root: _Group
    approval_text: str | None = None
    approval_days: int | None = None
    evidence: Evidence | None = None
    approval_evidence: Evidence | None = None


@dataclass(kw_only=True)
class _Block:
    name: str
    branches: list[_Branch] = field(default_factory=list)
    evidence: Evidence | None = None


@dataclass(kw_only=True)
class _Frame:
    group: _Group
    style: str | None = None  # the marker style of this group's items


# The line readings asked of each line, several times (`_marker`, `_op_of`, `strip_connector`),
# remembered for short lines (`diffing.extract.memo`): pure, and a payer's lines recur.
@memo.per_short_text
def _marker(line: str) -> tuple[str | None, str]:
    for style, pattern in _MARKERS:
        match = pattern.match(line)
        if match:
            if style == "bullet":
                style = f"bullet{match.group(1)}"
            return style, line[match.end() :].strip()
    return None, line.strip()


@memo.per_short_text
def _op_of(text: str) -> str | None:
    if _ALL_OF.search(text):
        return ALL
    if _ANY_OF.search(text):
        return ANY
    return None


def _approval(text: str) -> tuple[str, int] | None:
    match = _APPROVAL.search(text)
    if match is None:
        return None
    return duration_as_written(match.group("amount"), match.group("unit"))


def _clean_name(name: str) -> str:
    name = re.sub(r"\s*\([^)]*\)\s*$", "", name)
    name = re.sub(r"\s+", " ", name).strip(" .,;:-*").lower()
    return name


@dataclass(kw_only=True)
class _Builder:
    blocks: list[_Block] = field(default_factory=list)
    stack: list[_Frame] = field(default_factory=list)
    last_leaf: tuple[_Group, int] | None = None
    # "Length of Authorizations: 365 Days": one policy-wide fact, kept once on the general
    # block's initial branch (copied into every block, one edit of it would be N changes)
    default_approval: tuple[str, int] | None = None
    default_evidence: Evidence | None = None
    # the last item ended in "OR" inside an all-of group: the next item is its alternative
    pending_or: bool = False
    # superscript codes of formulary rows ("Jatenzo AR"): a line explaining one is a legend
    formulary_codes: set[str] = field(default_factory=set)
    # blocks a section of their own opens (Ohio: "Non-Preferred", "Teriparatide (Forteo)"); a
    # later "Subsequent Authorization" section is the page's, not theirs
    section_blocks: set[str] = field(default_factory=set)

    # -- blocks and branches ---------------------------------------------------------------

    def block(self, name: str, evidence: Evidence | None) -> _Block:
        existing = next((b for b in self.blocks if b.name == name), None)
        if existing is None:
            existing = _Block(name=name, evidence=evidence)
            self.blocks.append(existing)
        else:
            self.blocks.remove(existing)
            self.blocks.append(existing)
        self.stack = []
        return existing

    def current_block(self) -> _Block:
        if not self.blocks:
            return self.block(GENERAL, None)
        return self.blocks[-1]

    def branch(self, phase: str, op: str | None, evidence: Evidence, text: str = "") -> None:
        block = self.current_block()
        root = _Group(op=op, text=text)
        approval = _approval(text) if phase in (INITIAL, CONTINUATION) else None
        approval_evidence = None
        if approval is None and phase == INITIAL and block.name == GENERAL:
            approval, approval_evidence = self.default_approval, self.default_evidence
        branch = _Branch(
            phase=phase,
            root=root,
            approval_text=approval[0] if approval else None,
            approval_days=approval[1] if approval else None,
            evidence=evidence,
            approval_evidence=approval_evidence,
        )
        known = next((b for b in block.branches if b.phase == phase), None)
        if known is not None and not known.root.children:
            block.branches.remove(known)
        elif known is not None:
            # a second "initial" list in one block (Ohio: clinical PA, then non-preferred):
            # both apply, so they join under the branch's root.
            known.root.children.append(root)
            self.stack = [_Frame(group=known.root), _Frame(group=root)]
            return
        block.branches.append(branch)
        self.stack = [_Frame(group=root)]

    def policy_approval(self, approval: tuple[str, int], evidence: Evidence) -> None:
        self.default_approval, self.default_evidence = approval, evidence
        general = next((b for b in self.blocks if b.name == GENERAL), None)
        if general is None:
            general = _Block(name=GENERAL)
            self.blocks.insert(0, general)  # the block being read stays the current one
        initial = next((b for b in general.branches if b.phase == INITIAL), None)
        if initial is None:
            initial = _Branch(phase=INITIAL, root=_Group(op=None), evidence=evidence)
            general.branches.append(initial)
        initial.approval_text, initial.approval_days = approval
        initial.approval_evidence = evidence

    def ensure_branch(self, evidence: Evidence) -> None:
        if not self.stack:
            block = self.current_block()
            known = block.branches[-1] if block.branches else None
            if known is not None:
                self.stack = [_Frame(group=known.root)]
            else:
                self.branch(INITIAL, None, evidence)

    # -- items -----------------------------------------------------------------------------

    def place(self, style: str | None) -> _Group:
        """The group an item with marker `style` belongs to, popping deeper lists."""
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth].style == style:
                del self.stack[depth + 1 :]
                return self.stack[depth].group
        top = self.stack[-1]
        if top.style is None:
            top.style = style
            return top.group
        # a new marker style under an item that opened no group: a nested list
        nested = _Group(op=None)
        top.group.children.append(nested)
        self.stack.append(_Frame(group=nested, style=style))
        return nested

    def approval_statement(self, text: str, evidence: Evidence) -> bool:
        """ "Initial authorization will be for no more than 6 months": the branch's approval
        duration, not a criterion ("Reauthorization …" sets the continuation branch's)."""
        if not _APPROVAL_STATEMENT.match(text):
            return False
        approval = _approval(text)
        block = self.current_block()
        if approval is None or not block.branches:
            return False
        renewal = bool(_CONTINUATION.search(text.split(" will ")[0]))
        phase = CONTINUATION if renewal else INITIAL
        branch = next((b for b in block.branches if b.phase == phase), block.branches[-1])
        branch.approval_text, branch.approval_days = approval
        branch.approval_evidence = evidence
        return True

    def item(self, style: str | None, body: str, evidence: Evidence, phase: str) -> None:
        if self.approval_statement(_stripped(body)[0], evidence):
            return
        self.ensure_branch(evidence)
        group = self.place(style)
        text, connector = _stripped(body)
        if connector:
            group.connectors.append(connector)
        op = _op_of(text)
        opens = (op is not None and _OF_THE_FOLLOWING.search(text)) or text.rstrip().endswith(":")
        if opens and not _INLINE_LIST.search(text):
            child = _Group(op=op, text=text, of_therapies=bool(_TRIED_LEAD.search(text)))
            group.children.append(child)
            self.stack.append(_Frame(group=child))
            self.last_leaf = None
            self.pending_or = False
            return
        qualifier = _QUALIFIER.match(text) if self.pending_or else None
        if qualifier:
            # "OR - For any nonsolid formulation: must provide …": the alternative is what
            # follows the colon; whom it is for stays with it as a note
            text = text[qualifier.end() :].strip()
        leaves = [
            leaf
            for part in _BOTH.split(text)
            for leaf in remembered_leaves(part, evidence=evidence, in_dosing=phase == DOSING_BRANCH)
        ]
        if qualifier:
            leaves = [replace(leaf, note=qualifier.group(0).strip()) for leaf in leaves]
        bare = is_bare_term(text) and phase != DOSING_BRANCH
        if group.of_therapies and bare and all(leaf.kind == "documentation" for leaf in leaves):
            leaves = [step_leaf(text, evidence)]  # a therapy in a list of therapies tried
        elif group.op == ANY and bare and all(leaf.kind == "documentation" for leaf in leaves):
            leaves = [diagnosis_leaf(text, evidence)]  # a condition in a list of conditions
        if not leaves:
            return
        alternative_of = self.last_leaf if self.pending_or else None
        self.pending_or = connector == "or" and group.op == ALL
        if alternative_of is not None and alternative_of[0] is group:
            # "a … OR" then "b" inside an all-of list: one requirement met either way
            self.alternative(group, alternative_of[1], leaves)
            return
        if len(leaves) > 1:
            target = _Group(op=ALL)
            group.children.append(target)
        else:
            target = group
        target.children.extend(leaves)
        self.last_leaf = (target, len(target.children) - 1)
        if style is None and connector == "and" and group.op == ANY:
            # an unmarked "one of the following" list ends at its item that says "and": what
            # follows is the enclosing all-of list's next item (text whose bullets were lost)
            while len(self.stack) > 1 and self.stack[-1].group.op == ANY:
                self.stack.pop()

    def alternative(self, group: _Group, index: int, leaves: list[CriterionLeaf]) -> None:
        previous = group.children[index]
        either = _Group(op=ANY, children=[previous, *leaves])
        group.children[index] = either
        self.last_leaf = (either, len(either.children) - 1)

    def note(self, text: str) -> None:
        if self.last_leaf is None:
            return
        group, index = self.last_leaf
        leaf = group.children[index]
        if isinstance(leaf, CriterionLeaf):
            note = (leaf.note + " " + text).strip()
            group.children[index] = replace(leaf, note=note)

    def connector(self, word: str) -> None:
        if self.stack:
            self.stack[-1].group.connectors.append(word.lower())

    # -- result ----------------------------------------------------------------------------

    def tree(self) -> CriteriaTree:
        blocks = []
        for block in self.blocks:
            branches = []
            for branch in block.branches:
                root = branch.root.freeze()
                if not root.children and branch.approval_days is None:
                    continue
                if len(root.children) == 1 and isinstance(root.children[0], CriteriaGroup):
                    root = root.children[0]
                branches.append(
                    CriteriaBranch(
                        phase=branch.phase,
                        root=root,
                        approval_text=branch.approval_text,
                        approval_days=branch.approval_days,
                        evidence=branch.evidence,
                        approval_evidence=branch.approval_evidence,
                    )
                )
            if branches:
                blocks.append(
                    IndicationBlock(
                        name=block.name, branches=tuple(branches), evidence=block.evidence
                    )
                )
        return CriteriaTree(indications=tuple(_with_paths(b) for b in blocks))


def _with_paths(block: IndicationBlock) -> IndicationBlock:
    def walk(group: CriteriaGroup, path: tuple[str, ...]) -> CriteriaGroup:
        children: list[CriteriaGroup | CriterionLeaf] = []
        for n, child in enumerate(group.children, 1):
            here = (*path, f"{group.op}[{n}]")
            if isinstance(child, CriterionLeaf):
                children.append(replace(child, path=here))
            else:
                children.append(walk(child, here))
        return replace(group, children=tuple(children))

    return replace(
        block,
        branches=tuple(
            replace(b, root=walk(b.root, (block.name, b.phase))) for b in block.branches
        ),
    )


def build_tree(document: PolicyDocument) -> CriteriaTree:
    """The criteria tree of a parsed payer document (empty when it has no criteria sections)."""
    builder = _Builder()
    roles = dict(
        zip(
            (s.name for s in document.sections),
            section_roles([s.name for s in document.sections]),
            strict=True,
        )
    )
    criteria = [s for s in document.sections if roles[s.name] == CRITERIA]
    if len(criteria) > 1:  # the preamble is the title block then, not criteria
        criteria = [s for s in criteria if s.name != "preamble"]
    for section in criteria:
        _read_section(builder, section)
    for table in document.tables:
        if roles.get(table.section or "", section_role(table.section or "")) == CRITERIA:
            _read_table(builder, table)
    return builder.tree()


def _read_section(builder: _Builder, section: Section) -> None:
    builder.stack = []
    builder.last_leaf = None
    builder.pending_or = False
    in_context = False
    formulary = False  # inside a formulary drug table (its one-cell rows print without pipes)
    phase = INITIAL
    heading_block = _indication_from_heading(section.name)
    where = Evidence(sentence=section.name, section=section.name)
    if heading_block:
        builder.block(heading_block, where)
    phase = _heading_phase(builder, section.name, where) or phase
    table_rows: list[tuple[str, ...]] = []
    sidebar = skipping = False
    lines = _logical_lines(section.text)
    for index, (line_start, raw) in enumerate(lines):
        line = raw.strip().replace("**", "").replace("^^", "")
        if _is_caption_of_next(line, lines[index + 1 : index + 2]):
            continue  # "BRCA testing" above "BRCA testing (e.g., …) for women with …"
        if _is_table_row(line) and not in_context:
            cells = tuple(c.strip() for c in line.strip("|").split("|"))
            if not all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                table_rows.append(cells)
                formulary = formulary or _is_formulary_header(cells)
                if formulary:
                    builder.formulary_codes.update(_formulary_codes(cells[0]))
            continue
        if table_rows:
            _read_table(builder, Table(rows=tuple(table_rows), section=section.name))
            table_rows = []
        if not line:
            continue
        evidence = Evidence(sentence=line, page=section.page_at(line_start), section=section.name)
        if formulary and _marker(line)[0] is None and not _CRITERION_WORDS.search(line):
            # a drug row of the formulary table ("Jatenzo AR"): the drug list, not a criterion
            builder.formulary_codes.update(_formulary_codes(line))
            continue
        formulary = False
        if _is_legend(line, builder.formulary_codes):
            continue  # "AR - All drugs: a PA is required …": explains a formulary superscript
        if _SIDEBAR.match(line):
            sidebar = True  # a PDF's "Related Policies" box, printed among the criteria
            continue
        if sidebar and _title_case(line):
            continue
        sidebar = False
        if phase != EXCLUSION_BRANCH and _states_not_covered(line):
            # "… is unproven and not medically necessary": not a criterion of what is covered;
            # a list it opens ("… the following:") is not either.
            skipping = line.rstrip().endswith(":")
            builder.stack = [] if skipping else builder.stack
            continue
        # A heading inside a section ("OVERVIEW", "Guidelines", "POLICY STATEMENT") switches
        # between context and criteria.
        if _looks_like_heading(line) and not _indication_line(_marker(line)[1]):
            name = section_name(line)
            role = section_role(name)
            in_context = role != CRITERIA
            if in_context:
                continue
            phase = _heading_phase(builder, line, evidence) or phase
            continue
        if in_context or _is_table_row(line) or _NOT_A_CRITERION.match(line):
            continue  # a formulary table row, a label for every request
        if _DISCLAIMER.search(line) or _CITATION_LINE.match(line):
            continue
        default = _approval_default(line)
        if default is not None:
            builder.policy_approval(default, evidence)
            continue
        style, body = _marker(line)
        if _NOTE.match(body) or (
            (style or "").startswith("bullet") and _QUALIFIER.match(body) and not builder.pending_or
        ):
            builder.note(body)
            continue
        if _QUALIFIER.match(body) and builder.last_leaf is not None and not builder.pending_or:
            builder.note(body)
            continue
        connector = _CONNECTOR_LINE.match(body)
        if connector:
            builder.connector(connector.group(1))
            continue
        started = _start(builder, style, body, evidence)
        if started is not None:
            phase = started
            skipping = False
            continue
        if skipping:
            continue
        words = len(re.sub(r"\([^)]*\)", "", body).split())
        if style is None and re.search(r"\bCriteria$", body) and words <= 5:
            # "Non-Preferred Criteria": a label repeating its heading; "Teriparatide (Forteo)
            # Criteria": the criteria of one drug, a block of their own
            drug = _DRUG_CRITERIA.match(body)
            name = _clean_name(drug.group("name")) if drug else ""
            if drug and not _PHASE_WORDS.search(name) and name in section.name:
                builder.block(name, evidence)
                builder.section_blocks.add(name)
                builder.branch(INITIAL, ALL, evidence, body)
                phase = INITIAL
            continue
        if style is None and _is_label(body) and not _in_open_list(builder):
            named = _indication_from_heading(body)
            if named:
                # "Psoriatic Arthritis" printed as a plain line: the heading of its block
                builder.block(named, evidence)
                phase = INITIAL
            continue  # a link or caption ("Preferred Drug List"), not an item of the list
        if style is None and not builder.stack and not _CRITERION_WORDS.search(body):
            continue  # prose before any criteria list ("This is a subcategory of …")
        builder.item(style, body, evidence, phase)
    if table_rows:
        _read_table(builder, Table(rows=tuple(table_rows), section=section.name))


_SIDEBAR = re.compile(
    r"^(?:Related (?:Commercial |Medicare |Medicaid )?Polic(?:y|ies)|Community Plan Polic(?:y|ies)"
    r"|Medicare Advantage Polic(?:y|ies))$",
    re.IGNORECASE,
)
_NOT_COVERED_STATEMENT = re.compile(
    r"\b(?:is|are) (?:considered )?(?:unproven|experimental|investigational)\b.*\bnot medically"
    r" necessary\b|\bconsiders\b.*\bnot medically necessary\b"
    r"|\b(?:is|are) (?:considered )?not medically necessary\b",
    re.IGNORECASE,
)
_OPEN_PAREN = re.compile(r"[(\[]")
_CLOSE_PAREN = re.compile(r"[)\]]")

# What each line of a criteria section is asked, remembered for short lines
# (`diffing.extract.memo`): pure, and a payer's lines recur.
_states_not_covered = memo.per_short_text(
    lambda line: _NOT_COVERED_STATEMENT.search(line) is not None
)
_looks_like_heading = memo.per_short_text(looks_like_heading)


def _indication_line(text: str) -> re.Match[str] | None:
    """`_INDICATION_LINE` matched where it can match: its lookahead's words are case-sensitive
    literals, so a text without one of them has no match."""
    if "Approve" in text or "Criteria" in text or "Initial" in text:
        return _INDICATION_LINE.match(text)
    return None


def _title_case(line: str) -> bool:
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]*", line) if len(w) > 3]
    return bool(words) and all(w[0].isupper() for w in words) and not line.endswith((".", ";"))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """The section's lines with a PDF's wrapped lines joined back: a line inside an open
    bracket, a line starting in lower case, or "is / are proven …" continues the one before."""
    out: list[tuple[int, str]] = []
    offset = 0
    for raw in text.split("\n"):
        start = offset
        offset += len(raw) + 1
        line = raw.strip()
        if out and line and _marker(line)[0] is None and not line.startswith("|"):
            previous = out[-1][1]
            depth = len(_OPEN_PAREN.findall(previous)) - len(_CLOSE_PAREN.findall(previous))
            continues = (
                depth > 0
                or (line[:1].islower() and not previous.rstrip().endswith((".", ";", ":")))
                or re.match(r"^(?:is|are) (?:proven|unproven|not|considered|medically)\b", line)
            )
            if continues and not previous.startswith("|"):
                out[-1] = (out[-1][0], f"{previous} {line}")
                continue
        out.append((start, raw))
    return [piece for start, line in out for piece in _split_joined_item(start, line)]


_JOINED_ITEM = re.compile(r"(?:(?<=\bOR)|(?<=\bAND))\s+(?=-\s+\S)")


def _split_joined_item(start: int, line: str) -> list[tuple[int, str]]:
    """ "a … OR - For any …": a nested list item printed on its parent's line, split off."""
    # `_JOINED_ITEM` follows an "OR" or an "AND" (most lines have neither)
    match = _JOINED_ITEM.search(line) if "OR" in line or "AND" in line else None
    if match is None:
        return [(start, line)]
    return [(start, line[: match.start()]), (start + match.end(), line[match.end() :])]


# A label for every request ("All Authorizations …") or the PA requirement itself (read as
# `PriorAuth` by the extractor): never a criterion of a branch.
_NOT_A_CRITERION = re.compile(
    r"^(?:All Authori[sz]ations\b|(?:Prior authori[sz]ation|Precertification) (?:is )?required\b)",
    re.IGNORECASE,
)
_FORMULARY_HEADER = re.compile(
    r"^(?:non-?preferred|preferred|generic name|quantity|time \(days\)|brand name)$", re.I
)
_FORMULARY_CODE = re.compile(r"\b(?:AR|PA|QL|ST|BvG|CC|MD)\b")
_LEGEND = re.compile(r"^(?P<code>[A-Z][A-Za-z]{1,3})\s+[-–—:]\s+\S")
_PA_APPLIES = re.compile(r"\b(?:a )?(?:PA|prior authori[sz]ation) is required for\b", re.I)


def _in_open_list(builder: _Builder) -> bool:
    """Whether the current group was opened by a list lead-in ("… one of the following:"),
    so a bare capitalised line ("Azathioprine (Imuran)") is one of its items."""
    if not builder.stack:
        return False
    group = builder.stack[-1].group
    return group.op is not None or group.text.rstrip().endswith(":")


def _is_caption_of_next(line: str, following: list[tuple[int, str]]) -> bool:
    """A short line that the next line repeats as its start: a caption for that statement."""
    if not following or not line or len(line.split()) > 6 or _marker(line)[0] is not None:
        return False
    after = following[0][1].strip()
    return len(after) > len(line) + 3 and after.lower().startswith(line.lower() + " ")


# The benefit-plan disclaimer every UHC policy prints ("Benefit coverage for health services is
# determined by the member specific benefit plan document …"): about coverage, not a criterion
_DISCLAIMER = re.compile(
    r"\bbenefit coverage for health services is determined by\b|\bdoes not guarantee coverage\b",
    re.IGNORECASE,
)


def _is_formulary_header(cells: tuple[str, ...]) -> bool:
    """The header of a preferred-drug-list table ("Preferred | Generic Name | Quantity | …")."""
    return sum(1 for cell in cells if _FORMULARY_HEADER.match(cell)) >= 2


def _formulary_codes(cell: str) -> set[str]:
    return set(_FORMULARY_CODE.findall(cell))


def _is_legend(line: str, codes: set[str]) -> bool:
    """A footnote explaining a formulary superscript ("AR - All drugs: a PA is required for
    patients younger than 18 years"): when prior authorization applies, not a criterion."""
    match = _LEGEND.match(line)
    return match is not None and (match.group("code") in codes or bool(_PA_APPLIES.search(line)))


def _is_label(text: str) -> bool:
    """An unmarked caption or link text ("Preferred Drug List", "Quantity Limit List"): a few
    capitalised words, no verb or criterion word."""
    return (
        len(text.split()) <= 6
        and _title_case(text)
        and not _CRITERION_WORDS.search(text)
        and not re.search(r"\b(?:is|are|has|have|with|of age)\b|\d", text)
    )


_CRITERION_WORDS = re.compile(
    r"\b(?:must|patient|member|required|requires|tried|trial|years of age|prescribed)\b", re.I
)


def _approval_default(line: str) -> tuple[str, int] | None:
    if re.match(r"^Length of Authori[sz]ations?\b", line, re.IGNORECASE):
        return _approval(line)
    return None


@memo.per_short_text
def _indication_from_heading(name: str) -> str | None:
    from diffing.extract.document import heading_indications

    names = heading_indications(name)
    return names[0] if len(names) == 1 else None


def _heading_phase(builder: _Builder, line: str, evidence: Evidence) -> str | None:
    name = section_name(line)
    from diffing.extract.document import heading_indications

    indications = heading_indications(line)
    if len(indications) == 1:
        builder.block(indications[0], evidence)
    if _NOT_COVERED.search(name):
        # "Conditions Not Covered" is policy-wide, not part of the last indication block
        builder.block(GENERAL, evidence)
        builder.stack = []
        builder.branch(EXCLUSION_BRANCH, ALL, evidence)
        return EXCLUSION_BRANCH
    if "non-preferred" in name:
        builder.block("non-preferred agents", evidence)
        builder.section_blocks.add("non-preferred agents")
        builder.branch(INITIAL, ALL, evidence, line)
        return INITIAL
    if _CONTINUATION.search(name):
        if builder.blocks and builder.blocks[-1].name in builder.section_blocks:
            builder.block(GENERAL, evidence)
        builder.branch(CONTINUATION, None, evidence, line)
        return CONTINUATION
    if _INITIAL.search(name) or re.search(r"\bclinical pa\b|\bcriteria\b", name):
        if builder.blocks and builder.blocks[-1].name in builder.section_blocks:
            builder.block(GENERAL, evidence)
        builder.branch(INITIAL, None, evidence, line)
        return INITIAL
    if _DOSING.match(name):
        builder.branch(DOSING_BRANCH, None, evidence, line)
        return DOSING_BRANCH
    return None


def _start(builder: _Builder, style: str | None, body: str, evidence: Evidence) -> str | None:
    """Open an indication block or a branch when the line does; the phase it opens."""
    text, _connector = _stripped(body)
    indication = _indication_line(text) if style in ("number", "upper_dot", None) else None
    if indication and style is not None and re.search(r"\bApprove\b", text):
        builder.block(_clean_name(indication.group("name")), evidence)
        return INITIAL
    if _DOSING.match(text) and re.search(r"\bapprove\b|regimen|:", text, re.IGNORECASE):
        builder.stack = []
        builder.branch(DOSING_BRANCH, _op_of(text) or ANY, evidence, text)
        return DOSING_BRANCH
    head = text.split(".", 1)[0]
    if style is not None and _in_dosing(builder):
        return None  # "A) Initial Therapy. Approve up to 5 mg/kg": a regimen, not a branch
    if style in ("upper_paren", "upper_dot", None) and len(head.split()) <= 8:
        if _CONTINUATION.search(head) and re.search(r"\bapprove\b|following", text, re.I):
            builder.stack = []
            builder.branch(CONTINUATION, _op_of(text), evidence, text)
            return CONTINUATION
        if _INITIAL.search(head) and re.search(r"\bapprove\b|following", text, re.I):
            builder.stack = []
            builder.branch(INITIAL, _op_of(text), evidence, text)
            return INITIAL
    if style is None or style == "number":
        # Every coverage statement says "medically necessary" (in ASCII text, in any case).
        says = not text.isascii() or "medically necessary" in text.lower()
        coverage = _COVERAGE_STATEMENT.match(text) if says else None
        if coverage:
            builder.block(_clean_name(coverage.group("name")), evidence)
            builder.branch(INITIAL, _op_of(text), evidence, text)
            _prescriber_from_statement(builder, text, evidence)
            return INITIAL
        # Each of these patterns needs its literal words ("for the following", "considers"):
        # most lines have neither, and are not tried against them.
        listed = _FOR_INDICATIONS.match(text) if "for the following" in text else None
        if listed:
            # "BRAF mutation testing (e.g., …) for the following indications:" and its list
            builder.block(_clean_name(listed.group("name")), evidence)
            builder.branch(INITIAL, ANY, evidence, text)
            return INITIAL
        considers = _CONSIDERS.match(text) if "considers " in text else None
        if considers and not re.search(r"\bnot\s*$", text[: considers.start("rest")][:-19]):
            # "Aetna considers UVB phototherapy medically necessary for any of the following:"
            builder.block(_clean_name(considers.group("name")), evidence)
            rest = considers.group("rest").strip()
            builder.branch(INITIAL, _op_of(text) or ALL, evidence, text)
            if rest and not _OF_THE_FOLLOWING.search(rest):
                leaves = remembered_leaves(
                    re.sub(r"^(?:for|when|in)\s+", "", rest), evidence=evidence
                )
                builder.stack[-1].group.children.extend(leaves)
            return INITIAL
        members = (
            _FOR_MEMBERS.match(text) if style is None and re.search(r"\bconsider", text) else None
        )
        if members:
            builder.block(_clean_name(members.group("name")), evidence)
            builder.branch(INITIAL, ALL, evidence, text)
            who = re.search(
                r"\b(?:with|for (?:the )?treatment of)\s+(?P<what>.+)", members.group("rest")
            )
            if who:
                builder.stack[-1].group.children.append(diagnosis_leaf(who.group("what"), evidence))
            return INITIAL
        lead = _LEAD_IN.search(text)
        # "… when all of the following criteria are met:1,57, 62": the reference numbers of a
        # lead-in are not part of it
        if lead and _op_of(text) and _CITED.sub(":", text).endswith(":"):
            builder.block(_clean_name(lead.group("name")), evidence)
            builder.branch(INITIAL, _op_of(text), evidence, text)
            return INITIAL
    return None


def _in_dosing(builder: _Builder) -> bool:
    block = builder.current_block()
    return (
        bool(block.branches) and block.branches[-1].phase == DOSING_BRANCH and bool(builder.stack)
    )


def _prescriber_from_statement(builder: _Builder, text: str, evidence: Evidence) -> None:
    leaves = [
        leaf
        for leaf in remembered_leaves(text.split("for individuals")[0], evidence=evidence)
        if leaf.kind == "prescriber"
    ]
    if leaves and builder.stack:
        root = builder.stack[0].group
        requirement = root.op
        if requirement == ANY:
            # "ordered by X for individuals with any of: a, b": the prescriber and one of the
            # conditions.
            alternatives = _Group(op=ANY, text=root.text)
            root.op = ALL
            root.children.extend(leaves)
            root.children.append(alternatives)
            builder.stack = [_Frame(group=root), _Frame(group=alternatives)]
        else:
            root.children.extend(leaves)


_TABLE_DIAGNOSIS = re.compile(r"diagnos|indication|condition", re.IGNORECASE)
_TABLE_LENGTH = re.compile(r"length|duration|approval|authori", re.IGNORECASE)
_CELL_LIMIT = re.compile(r"^\\?(?P<op>[<>≤≥]=?)\s*(?P<value>\d+(?:\.\d+)?)")
_CELL_RANGE = re.compile(
    r"^\\?(?P<op1>[<>≤≥]=?)\s*(?P<v1>\d+(?:\.\d+)?)\s*to\s*(?P<op2>[<>≤≥]=?)\s*(?P<v2>\d+(?:\.\d+)?)"
)
_OPS = {"≤": "<=", "≥": ">=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


def _read_table(builder: _Builder, table: Table) -> None:
    """A table with a diagnosis column and an authorization length: one block per row."""
    if len(table.rows) < 2:
        return
    header = [cell.strip() for cell in table.rows[0]]
    diagnosis = next((i for i, h in enumerate(header) if _TABLE_DIAGNOSIS.search(h)), None)
    length = next((i for i, h in enumerate(header) if _TABLE_LENGTH.search(h)), None)
    if diagnosis is None or length is None:
        return
    for row in table.rows[1:]:
        if len(row) != len(header):
            continue
        cell = row[diagnosis].strip()
        if not cell:
            continue
        evidence = Evidence(sentence=" | ".join(row), page=table.page, section=table.section)
        name = _clean_name(re.split(r",\s*age\b|\(e\.g\.|\(", cell)[0])
        builder.block(name, evidence)
        builder.stack = []
        approval = remembered_durations(row[length])
        builder.branch(INITIAL, ALL, evidence)
        branch = builder.current_block().branches[-1]
        if approval:
            match = re.search(r"(\d+)\s*(days?|weeks?|months?|years?)", row[length], re.I)
            if match:
                branch.approval_text, branch.approval_days = duration_as_written(*match.groups())
        leaves: list[CriterionLeaf] = [
            leaf for leaf in remembered_leaves(cell, evidence=evidence) if leaf.kind == "age"
        ]
        for i, value in enumerate(row):
            if i in (diagnosis, length):
                continue
            measure = re.sub(r"\s*level$", "", header[i].strip(), flags=re.IGNORECASE).lower()
            leaves.extend(_cell_limits(measure, value.strip(), evidence))
        branch.root.children.extend(leaves)
    builder.stack = []


def _cell_limits(measure: str, value: str, evidence: Evidence) -> list[CriterionLeaf]:
    ranged = _CELL_RANGE.match(value)
    pairs: list[tuple[str, str]] = []
    if ranged:
        pairs = [
            (ranged.group("op1"), ranged.group("v1")),
            (ranged.group("op2"), ranged.group("v2")),
        ]
    else:
        single = _CELL_LIMIT.match(value)
        if single:
            pairs = [(single.group("op"), single.group("value"))]
    out = []
    for raw_op, number in pairs:
        op = _OPS[raw_op]
        shown = f"{measure} {op} {float(number):g}"
        out.append(
            CriterionLeaf(
                kind="threshold",
                value=shown,
                subject=f"{measure}|{op[:1]}",
                text=value,
                op=op,
                number=float(number),
                evidence=evidence,
            )
        )
    return out


__all__ = ["EXCLUSION", "build_tree"]

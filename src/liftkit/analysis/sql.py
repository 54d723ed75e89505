"""Analysis SQL: built once as a sqlglot tree from a :class:`Plan`, rendered per dialect.

One query reduces the raw tables to sufficient statistics, grouped finely enough that Python
can add them up into every view an analysis shows:

- ``lk_exposures``: the experiment's exposures in the phase (and segment);
- ``lk_units``: one row per unit, with its first exposure, its variation (−1 when it saw more
  than one, so it is counted but not analysed) and its dimension values;
- ``lk_agg_N``: one per fact table, joined to the units on the identifier only (no inequality
  joins, which some engines lack), every metric's windows applied inside its aggregate;
- ``lk_values``: a row of per-unit numbers per unit (capped, CUPED covariates alongside);
- the result: per variation × exposure date × dimension values, ``COUNT`` and the sums and sums
  of products the statistics need. Sums are additive, so totals, dimension slices and the
  cumulative series by exposure date come from this one result.

Quantiles are not additive; each quantile metric gets its own query (order statistics by
window functions). Every name liftkit introduces starts with ``lk_``, and no alias repeats a
name used in the same SELECT (ClickHouse resolves aliases query-wide).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlglot
from sqlglot import exp

from liftkit.analysis.plan import Plan, PlannedMetric, Variable
from liftkit.stats.quantile import Z_95

__all__ = ["Queries", "build", "metric_columns", "render", "variables"]


@dataclass(frozen=True)
class Queries:
    """The main query, and one per quantile metric (by metric key)."""

    main: exp.Query
    quantiles: dict[str, exp.Query]


def render(query: exp.Expr, dialect: str, *, pretty: bool = True) -> str:
    """The query as text in ``dialect``, with the few rewrites sqlglot's generators lack."""
    return _for_dialect(query, dialect).sql(dialect=dialect, pretty=pretty)


def variables(metric: PlannedMetric) -> list[str]:
    """The per-unit columns a metric's statistics are built from, in the stats' order."""
    names = ["num"]
    if metric.denominator is not None:
        names.append("den")
    if metric.cuped is not None:
        names += ["pre_num", "pre_den"] if metric.denominator is not None else ["pre_num"]
    return names


def metric_columns(index: int, metric: PlannedMetric) -> list[str]:
    """Result columns of metric ``index``: n, sums, then sums of products (i ≤ j)."""
    count = len(variables(metric))
    cols = [f"m{index}_n"] + [f"m{index}_s{i}" for i in range(count)]
    cols += [f"m{index}_p{i}{j}" for i in range(count) for j in range(i, count)]
    return cols


# -- small builders ---------------------------------------------------------------------------


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _num(value: float) -> exp.Expr:
    return exp.Literal.number(value)


def _ts(value: datetime) -> exp.Expr:
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
    # Plain TIMESTAMP: comparing a TIMESTAMP column with a TIMESTAMPTZ literal makes DuckDB
    # cast every row (measured: 7 s of 18 s on 50M events). Sessions run in UTC, so a
    # timestamptz column (PostgreSQL) compares with it correctly.
    return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMP"))


def _shift(value: exp.Expr, seconds: int) -> exp.Expr:
    if seconds == 0:
        return value
    interval = exp.Interval(this=_num(abs(seconds)), unit=exp.Var(this="SECOND"))
    return (
        exp.Add(this=value, expression=interval)
        if seconds > 0
        else exp.Sub(this=value, expression=interval)
    )


def _and(*conds: exp.Expr | None) -> exp.Expr:
    present = [c for c in conds if c is not None]
    return exp.and_(*present) if present else exp.true()


def _case(cond: exp.Expr, then: exp.Expr, default: exp.Expr | None = None) -> exp.Case:
    case = exp.Case().when(cond, then)
    return case.else_(default) if default is not None else case


def _double(value: exp.Expr) -> exp.Expr:
    return exp.cast(value, exp.DataType.build("DOUBLE"))


def _query(sql: str, dialect: str, what: str) -> exp.Query:
    try:
        parsed = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError as exc:
        raise ValueError(f"{what}: not valid SQL: {exc}") from None
    if not isinstance(parsed, exp.Query):
        raise ValueError(f"{what}: must be a SELECT query")
    return parsed


def _filter(text: str, dialect: str, what: str) -> exp.Expr:
    try:
        return sqlglot.condition(text, dialect=dialect)
    except sqlglot.errors.ParseError as exc:
        raise ValueError(f"{what}: not a valid SQL condition: {exc}") from None


#: Units' columns as the first fact table's aggregate carries them (see ``_Builder.facts``).
_CARRIED = {"lk_variation": "lk_bvar", "lk_date": "lk_bday", "lk_first": "lk_bfirst"}


# -- the query --------------------------------------------------------------------------------


class _Builder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.dialect = plan.dialect
        self.ctes: list[tuple[str, exp.Query]] = []
        # fact key -> (cte name, {variable key: column})
        self.aggs: dict[str, tuple[str, dict[tuple[Variable, bool], str]]] = {}
        # Percentile-capped value columns get a new name in lk_values (see ``values``).
        self.renamed: dict[str, str] = {}

    # exposures and units

    def dimension(self, name: str) -> exp.Expr:
        if self.plan.exposure_sql is not None:
            return _col(name)
        if self.plan.attributes_type == "jsonb":
            return sqlglot.parse_one(f"attributes ->> '{_json_key(name)}'", read="postgres")
        return sqlglot.parse_one(f"attributes ->> '$.{_json_key(name)}'", read="duckdb")

    def exposures(self) -> None:
        plan = self.plan
        if plan.exposure_sql is None:
            unit: exp.Expr = _col("hash_value")
            source: exp.Expr = exp.to_table("exposures")
        else:
            unit = _col(plan.identifier)
            source = _query(plan.exposure_sql, self.dialect, "exposure_sql").subquery("lk_src")
        select = exp.select(
            unit.as_("lk_eunit"),
            _col("timestamp").as_("lk_eat"),
            _col("variation_id").as_("lk_earm"),
            *(self.dimension(d).as_(f"lk_edim{i}") for i, d in enumerate(plan.dimensions)),
        ).from_(source)
        where: list[exp.Expr] = [
            exp.EQ(this=_col("experiment_key"), expression=exp.Literal.string(plan.experiment)),
            exp.GTE(this=_col("timestamp"), expression=_ts(plan.start)),
            exp.LT(this=_col("timestamp"), expression=_ts(plan.end)),
        ]
        if plan.segment_sql is not None:
            segment = _query(plan.segment_sql, self.dialect, "segment")
            members = exp.select(_col(plan.segment_identifier or plan.identifier)).from_(
                segment.subquery("lk_seg")
            )
            where.append(unit.copy().isin(query=members))
        self.ctes.append(("lk_exposures", select.where(_and(*where))))
        arms = (exp.Min(this=_col("lk_earm")), exp.Max(this=_col("lk_earm")))
        units = (
            exp.select(
                _col("lk_eunit").as_("lk_unit"),
                exp.Min(this=_col("lk_eat")).as_("lk_first"),
                exp.cast(exp.Min(this=_col("lk_eat")), exp.DataType.build("DATE")).as_("lk_date"),
                _case(exp.EQ(this=arms[0], expression=arms[1]), arms[0].copy(), _num(-1)).as_(
                    "lk_variation"
                ),
                *(
                    exp.Min(this=_col(f"lk_edim{i}")).as_(f"lk_dim{i}")
                    for i in range(len(plan.dimensions))
                ),
            )
            .from_("lk_exposures")
            .group_by(_col("lk_eunit"))
        )
        self.ctes.append(("lk_units", units))

    # fact tables

    def fact_joins(
        self, fact_key: str, since: datetime | None = None
    ) -> list[tuple[exp.Expr, exp.Expr]]:
        """(source, ON condition) pairs joining units ``u`` to a fact table ``lk_f``, through
        an identifier join table when the fact table lacks the experiment's identifier.

        With ``since``, the fact table is cut to rows from then to the analysis end first, so
        the join condition stays an equality (all that every engine joins on)."""
        plan = self.plan
        fact = plan.facts[fact_key]
        table = _query(fact.sql, self.dialect, f"fact table {fact_key!r}")
        if since is not None:
            ts = _col(fact.timestamp_column)
            table = (
                exp.select(exp.Star())
                .from_(table.subquery("lk_f0"))
                .where(
                    _and(
                        exp.GTE(this=ts, expression=_ts(since)),
                        exp.LT(this=ts.copy(), expression=_ts(plan.end)),
                    )
                )
            )
        table = table.subquery("lk_f")
        if plan.identifier in fact.identifier_columns:
            return [
                (table, exp.EQ(this=_col(plan.identifier, "lk_f"), expression=_col("lk_unit", "u")))
            ]
        for join in plan.joins:
            other = next((i for i in join.identifiers if i != plan.identifier), None)
            if (
                other is not None
                and plan.identifier in join.identifiers
                and other in fact.identifier_columns
            ):
                mapping = (
                    exp.select(_col(plan.identifier), _col(other))
                    .distinct()
                    .from_(_query(join.sql, self.dialect, "identifier join").subquery("lk_j0"))
                    .subquery("lk_j")
                )
                return [
                    (
                        mapping,
                        exp.EQ(this=_col(plan.identifier, "lk_j"), expression=_col("lk_unit", "u")),
                    ),
                    (table, exp.EQ(this=_col(other, "lk_f"), expression=_col(other, "lk_j"))),
                ]
        raise ValueError(f"fact table {fact_key!r} cannot be joined to {plan.identifier!r}")

    def join_facts(
        self, query: exp.Select, fact_key: str, since: datetime | None = None, kind: str = ""
    ) -> exp.Select:
        for source, on in self.fact_joins(fact_key, since):
            query = query.join(source, on=on, join_type=kind or None)
        return query

    def condition(self, var: Variable, pre: bool, cuped: int | None) -> exp.Expr:
        fact = self.plan.facts[var.fact]
        ts = _col(fact.timestamp_column, "lk_f")
        first = _col("lk_first", "u")
        filters = [
            _filter(f, self.dialect, f"filter of fact table {var.fact!r}") for f in var.filters
        ]
        if pre:
            assert cuped is not None
            return _and(
                exp.GTE(this=ts, expression=_shift(first, -cuped)),
                exp.LT(this=ts.copy(), expression=first.copy()),
                *filters,
            )
        window = None
        if var.window is not None:
            window = exp.LT(this=ts.copy(), expression=_shift(first.copy(), var.delay + var.window))
        lookback = None
        if var.lookback is not None:
            lookback = exp.GTE(
                this=ts.copy(), expression=_ts(self.plan.end - timedelta(seconds=var.lookback))
            )
        return _and(
            exp.GTE(this=ts, expression=_shift(first, var.delay)), window, lookback, *filters
        )

    def aggregate(self, var: Variable, cond: exp.Expr) -> exp.Expr:
        if var.binary:
            return exp.Max(this=_case(cond, _num(1), _num(0)))
        value: exp.Expr = _num(1) if var.column == "$$count" else _col(var.column, "lk_f")
        picked = _case(cond, value)
        if var.aggregation == "count":
            return exp.Count(this=picked)
        if var.aggregation == "max":
            return exp.Max(this=picked)
        if var.aggregation == "count_distinct":
            return exp.Count(this=exp.Distinct(expressions=[picked]))
        return exp.Sum(this=picked)

    def facts(self) -> None:
        """One aggregate CTE per fact table, with a column per (variable, pre-period)."""
        wanted: dict[str, dict[tuple[Variable, bool], int | None]] = {}
        for metric in self.plan.metrics:
            if metric.type == "quantile" and metric.quantile_level == "event":
                continue
            for var in (metric.numerator, metric.denominator):
                if var is None:
                    continue
                slots = wanted.setdefault(var.fact, {})
                slots[(var, False)] = None
                if metric.cuped is not None:
                    slots[(var, True)] = max(slots.get((var, True)) or 0, metric.cuped)
        if self.plan.activation is not None:
            wanted.setdefault(self.plan.activation.fact, {})[(self.plan.activation, False)] = None
        # The first fact table is LEFT JOINed to every unit and carries the units' columns:
        # it is the base the others join to, which saves one join of all units.
        carried = list(_CARRIED.items())
        carried += [(f"lk_dim{i}", f"lk_bdim{i}") for i in range(len(self.plan.dimensions))]
        for n, (fact_key, slots) in enumerate(wanted.items()):
            name = f"lk_agg{n}"
            columns: dict[tuple[Variable, bool], str] = {}
            selects: list[exp.Expr] = [_col("lk_unit", "u").as_("lk_key")]
            if n == 0:  # one value per unit; MIN is cheaper than grouping by them (measured)
                selects += [exp.Min(this=_col(c, "u")).as_(alias) for c, alias in carried]
            for i, ((var, pre), cuped) in enumerate(slots.items()):
                columns[(var, pre)] = f"lk_c{i}"
                cond = self.condition(var, pre, cuped)
                selects.append(self.aggregate(var, cond).as_(f"lk_c{i}"))
            lookback = max((c or 0) for c in slots.values())
            since = self.plan.start - timedelta(seconds=lookback)
            query = exp.select(*selects).from_(exp.to_table("lk_units").as_("u"))
            if n == 0:
                query = self.join_facts(query, fact_key, since, "left")
            else:
                query = self.join_facts(query, fact_key, since).where(
                    exp.GTE(this=_col("lk_variation", "u"), expression=_num(0))
                )
            self.ctes.append((name, query.group_by(_col("lk_unit", "u"))))
            self.aggs[fact_key] = (name, columns)

    def unit_column(self, name: str) -> exp.Expr:
        """A unit's column (variation, date, first exposure, dimension) in ``lk_values``'s
        FROM: carried by the first fact table's aggregate, or ``lk_units`` if there is none."""
        if not self.aggs:
            return _col(name, "u")
        return _col(_CARRIED.get(name, name.replace("lk_dim", "lk_bdim")), "a0")

    def unit_value(self, var: Variable, pre: bool, *, zero: bool = True) -> exp.Expr:
        """A unit's aggregate; 0 for units without matching rows unless ``zero`` is False
        (quantiles of units' values are over the units that have one)."""
        name, columns = self.aggs[var.fact]
        value = _col(columns[(var, pre)], name.replace("lk_agg", "a"))
        return exp.Coalesce(this=value, expressions=[_num(0)]) if zero else value

    def values(self) -> None:
        """Per unit: each metric's variables as doubles, capped, NULL while incomplete."""
        plan = self.plan
        unit = self.unit_column
        raw: list[exp.Expr] = [
            unit("lk_variation").as_("lk_arm"),
            unit("lk_date").as_("lk_day"),
            *(unit(f"lk_dim{i}").as_(f"lk_d{i}") for i in range(len(plan.dimensions))),
        ]
        percentile: list[tuple[str, float]] = []
        for k, metric in enumerate(plan.metrics):
            if metric.type == "quantile" and metric.quantile_level == "event":
                continue
            sources = {"num": (metric.numerator, False), "den": (metric.denominator, False)}
            sources["pre_num"] = (metric.numerator, True)
            sources["pre_den"] = (metric.denominator, True)
            for i, role in enumerate(variables(metric)):
                var, pre = sources[role]
                assert var is not None
                zero = metric.type != "quantile"
                value: exp.Expr = _double(self.unit_value(var, pre, zero=zero))
                cap = metric.capping
                if cap.type == "absolute" and role in ("num", "pre_num"):
                    value = exp.Least(this=value, expressions=[_num(cap.value or 0)])
                if metric.complete_after is not None:
                    done = exp.LTE(
                        this=_shift(unit("lk_first"), metric.complete_after),
                        expression=_ts(plan.end),
                    )
                    value = _case(done, value)
                raw.append(value.as_(f"lk_v{k}_{i}"))
                if cap.type == "percentile" and role in ("num", "pre_num"):
                    percentile.append((f"lk_v{k}_{i}", float(cap.value or 1.0)))
        names = [name for name, _ in self.aggs.values()]
        if names:
            query = exp.select(*raw).from_(exp.to_table(names[0]).as_("a0"))
        else:
            query = exp.select(*raw).from_(exp.to_table("lk_units").as_("u"))
        for name in names[1:]:
            alias = name.replace("lk_agg", "a")
            query = query.join(
                exp.to_table(name).as_(alias),
                on=exp.EQ(this=_col("lk_key", alias), expression=_col("lk_key", "a0")),
                join_type="left",
            )
        if plan.activation is not None:
            reached = exp.EQ(this=self.unit_value(plan.activation, False), expression=_num(1))
            query = query.where(
                exp.or_(exp.LT(this=unit("lk_variation"), expression=_num(0)), reached)
            )
        if not percentile:
            self.ctes.append(("lk_values", query))
            return
        self.ctes.append(("lk_raw", query))
        caps = (
            exp.select(
                *(
                    exp.WithinGroup(
                        this=exp.PercentileCont(this=_num(q)),
                        expression=exp.Order(expressions=[exp.Ordered(this=_col(c))]),
                    ).as_(f"lk_cap{j}")
                    for j, (c, q) in enumerate(percentile)
                )
            )
            .from_("lk_raw")
            .where(exp.GTE(this=_col("lk_arm"), expression=_num(0)))
        )
        self.ctes.append(("lk_caps", caps))
        capped = {c: j for j, (c, _) in enumerate(percentile)}
        out: list[exp.Expr] = []
        for item in raw:
            alias = item.alias
            if alias in capped:
                cap_col = _col(f"lk_cap{capped[alias]}", "c")
                out.append(exp.Least(this=_col(alias, "r"), expressions=[cap_col]).as_(f"{alias}c"))
            else:
                out.append(_col(alias, "r").as_(alias))
        # Capped columns get a new name: ClickHouse would read an alias equal to the column.
        values = (
            exp.select(*out)
            .from_(exp.to_table("lk_raw").as_("r"))
            .join(exp.to_table("lk_caps").as_("c"), join_type="cross")
        )
        self.ctes.append(("lk_values", values))
        self.renamed = {c: f"{c}c" for c in capped}

    def value_col(self, name: str) -> exp.Column:
        return _col(self.renamed.get(name, name))

    def main(self) -> exp.Query:
        plan = self.plan
        keys = [
            _col("lk_arm"),
            _col("lk_day"),
            *(_col(f"lk_d{i}") for i in range(len(plan.dimensions))),
        ]
        selects: list[exp.Expr] = [k.copy() for k in keys]
        selects.append(exp.Count(this=exp.Star()).as_("lk_units"))
        for k, metric in enumerate(plan.metrics):
            if metric.type == "quantile" and metric.quantile_level == "event":
                continue
            cols = [self.value_col(f"lk_v{k}_{i}") for i in range(len(variables(metric)))]
            names = iter(metric_columns(k, metric))
            selects.append(exp.Count(this=cols[0].copy()).as_(next(names)))
            for c in cols:
                selects.append(exp.Sum(this=c.copy()).as_(next(names)))
            for i in range(len(cols)):
                for j in range(i, len(cols)):
                    product = exp.Mul(this=cols[i].copy(), expression=cols[j].copy())
                    selects.append(exp.Sum(this=product).as_(next(names)))
        return self.with_ctes(exp.select(*selects).from_("lk_values").group_by(*keys))

    def with_ctes(self, query: exp.Select, extra: list[tuple[str, exp.Query]] = ()) -> exp.Query:  # type: ignore[assignment]
        for name, cte in [*self.ctes, *extra]:
            query = query.with_(name, as_=cte.copy())
        return query

    def quantile(self, k: int, metric: PlannedMetric) -> exp.Query:
        """Order statistics of one quantile metric per variation (see stats.quantile)."""
        nu = float(metric.quantile or 0.5)
        event = metric.quantile_level == "event"
        if event:
            var = metric.numerator
            value = _col(var.column, "lk_f")
            q = exp.select(
                _col("lk_unit", "u").as_("lk_qunit"),
                _col("lk_variation", "u").as_("lk_qarm"),
                _double(value).as_("lk_qv"),
            ).from_(exp.to_table("lk_units").as_("u"))
            q = self.join_facts(q, var.fact).where(
                _and(
                    exp.GTE(this=_col("lk_variation", "u"), expression=_num(0)),
                    exp.LT(
                        this=_col(self.plan.facts[var.fact].timestamp_column, "lk_f"),
                        expression=_ts(self.plan.end),
                    ),
                    self.condition(var, False, None),
                    exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())),
                )
            )
        else:
            v = self.value_col(f"lk_v{k}_0")
            q = (
                exp.select(_col("lk_arm").as_("lk_qarm"), v.as_("lk_qv"))
                .from_("lk_values")
                .where(
                    _and(
                        exp.GTE(this=_col("lk_arm"), expression=_num(0)),
                        exp.Not(this=exp.Is(this=v.copy(), expression=exp.Null())),
                    )
                )
            )
        part = exp.Window(
            this=exp.RowNumber(),
            partition_by=[_col("lk_qarm")],
            order=exp.Order(expressions=[exp.Ordered(this=_col("lk_qv"))]),
        )
        size = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[_col("lk_qarm")])
        ranked = exp.select(
            _col("lk_qarm"),
            _col("lk_qv"),
            *([_col("lk_qunit")] if event else []),
            part.as_("lk_rn"),
            size.as_("lk_qn"),
        ).from_("lk_q")
        n = _col("lk_qn")
        half = exp.Mul(
            this=_num(Z_95),
            expression=exp.Sqrt(this=exp.Mul(this=n.copy(), expression=_num(nu * (1 - nu)))),
        )
        centre = exp.Mul(this=n.copy(), expression=_num(nu))

        def pick(rank: exp.Expr, alias: str) -> exp.Expr:
            bounded = exp.Greatest(
                this=exp.Least(this=rank, expressions=[n.copy()]), expressions=[_num(1)]
            )
            hit = exp.EQ(this=_col("lk_rn"), expression=bounded)
            return exp.Max(this=_case(hit, _col("lk_qv"))).as_(alias)

        stats = (
            exp.select(
                _col("lk_qarm").as_("lk_sarm"),
                exp.Max(this=n.copy()).as_("lk_n"),
                pick(exp.Ceil(this=centre), "lk_quantile"),
                pick(exp.Floor(this=exp.Sub(this=centre.copy(), expression=half)), "lk_lower"),
                pick(
                    exp.Ceil(this=exp.Add(this=centre.copy(), expression=half.copy())), "lk_upper"
                ),
            )
            .from_("lk_ranked")
            .group_by(_col("lk_qarm"))
        )
        extra: list[tuple[str, exp.Query]] = [
            ("lk_q", q),
            ("lk_ranked", ranked),
            ("lk_qstats", stats),
        ]
        if not event:
            return self.with_ctes(exp.select(exp.Star()).from_("lk_qstats"), extra)
        below = _case(
            exp.LTE(this=_col("lk_qv", "q"), expression=_col("lk_quantile", "s")), _num(1), _num(0)
        )
        clusters = (
            exp.select(
                _col("lk_qarm", "q").as_("lk_carm"),
                _col("lk_qunit", "q").as_("lk_cunit"),
                exp.Sum(this=below).as_("lk_b"),
                exp.Count(this=exp.Star()).as_("lk_c"),
            )
            .from_(exp.to_table("lk_q").as_("q"))
            .join(
                exp.to_table("lk_qstats").as_("s"),
                on=exp.EQ(this=_col("lk_sarm", "s"), expression=_col("lk_qarm", "q")),
            )
            .group_by(_col("lk_qarm", "q"), _col("lk_qunit", "q"))
        )
        b, c = _col("lk_b"), _col("lk_c")
        sums = (
            exp.select(
                _col("lk_carm"),
                exp.Count(this=exp.Star()).as_("lk_k"),
                exp.Sum(this=_double(b)).as_("lk_sb"),
                exp.Sum(this=_double(c.copy())).as_("lk_sc"),
                exp.Sum(this=_double(exp.Mul(this=b.copy(), expression=b.copy()))).as_("lk_sbb"),
                exp.Sum(this=_double(exp.Mul(this=c.copy(), expression=c.copy()))).as_("lk_scc"),
                exp.Sum(this=_double(exp.Mul(this=b.copy(), expression=c.copy()))).as_("lk_sbc"),
            )
            .from_("lk_clusters")
            .group_by(_col("lk_carm"))
        )
        extra += [("lk_clusters", clusters), ("lk_csums", sums)]
        final = exp.select(
            _col("lk_sarm", "s"), _col("lk_n", "s"), _col("lk_quantile", "s"),
            _col("lk_lower", "s"), _col("lk_upper", "s"), _col("lk_k", "k"), _col("lk_sb", "k"),
            _col("lk_sc", "k"), _col("lk_sbb", "k"), _col("lk_scc", "k"), _col("lk_sbc", "k"),
        ).from_(exp.to_table("lk_qstats").as_("s")).join(
            exp.to_table("lk_csums").as_("k"),
            on=exp.EQ(this=_col("lk_carm", "k"), expression=_col("lk_sarm", "s")),
        )  # fmt: skip
        return self.with_ctes(final, extra)


def _json_key(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"analysis.dimensions: {name!r} must be letters, digits, - or _")
    return name


def build(plan: Plan) -> Queries:
    """The analysis queries of a plan (render them with :func:`render`)."""
    builder = _Builder(plan)
    builder.exposures()
    builder.facts()
    builder.values()
    main = builder.main()
    quantiles = {
        m.key: builder.quantile(k, m) for k, m in enumerate(plan.metrics) if m.type == "quantile"
    }
    return Queries(main=main, quantiles=quantiles)


# -- dialect rewrites -------------------------------------------------------------------------


def _exact_percentile(node: exp.Expr, dialect: str) -> exp.Expr:
    """PERCENTILE_CONT as each engine spells an exact, interpolated percentile."""
    if not (isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont)):
        return node
    q = node.this.this
    order = node.expression.expressions[0].this
    if dialect in ("spark", "databricks"):
        return exp.Anonymous(this="PERCENTILE", expressions=[order, q])
    if dialect == "clickhouse":
        return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[q], params=[order])
    if dialect == "bigquery":
        # BigQuery has PERCENTILE_CONT only as a window function: approximate with 1000 bins.
        bins = exp.Anonymous(this="APPROX_QUANTILES", expressions=[order, _num(1000)])
        offset = exp.Anonymous(this="OFFSET", expressions=[_num(round(float(q.name) * 1000))])
        return exp.Bracket(this=bins, expressions=[offset])
    return node


def _utc_timestamp(node: exp.Expr, dialect: str) -> exp.Expr:
    """BigQuery's TIMESTAMP is absolute time (sqlglot maps plain TIMESTAMP to DATETIME)."""
    if (
        dialect == "bigquery"
        and isinstance(node, exp.DataType)
        and node.this == exp.DType.TIMESTAMP
    ):
        return exp.DataType.build("TIMESTAMPTZ")
    return node


def _for_dialect(query: exp.Expr, dialect: str) -> exp.Expr:
    out = query.copy().transform(_exact_percentile, dialect)
    return out.transform(_utc_timestamp, dialect)

"""What happens inside a demo run: task templates, tool results, answers, and the per-agent scripts.

`workbench.demo` schedules runs and encodes them as OTLP; this module decides what each run *does*. A script
drives a trace builder (duck-typed, see `workbench.demo._Trace`) through `step`, `think`, `run`, `reply`,
`user`, `guard`, `human` and `answer`, and injects the run's failure mode. Task templates are built from a
fixed seed, so a task id means the same request in every fleet and in both agent versions.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

REFUND_LIMIT = 100.0
"""Refunds above this need a human approval; the `refund_policy` guardrail blocks them otherwise."""


class Call(NamedTuple):
    """One tool call the agent makes: arguments (a dict, or raw text when malformed) and what comes back."""

    tool: str
    args: dict[str, Any] | str
    result: str
    error: str | None = None
    """`Type: message` when the tool failed; the span gets status ERROR and `error.type` = Type."""
    tokens: int = 0
    """Extra context tokens the result adds beyond its (truncated) text, e.g. a whole file."""


@dataclass(frozen=True)
class Task:
    """One request template an agent gets again and again (a support ticket type, a coding chore)."""

    id: str
    """Stable task id (`support.refund.03`); repeats across runs and versions."""
    intent: str
    text: str
    """The user's request, verbatim."""
    modes: frozenset[str]
    """Failure modes this task can exhibit (a missed escalation needs a user who asked for a human, ...)."""
    facts: dict[str, Any]
    """Precomputed tool arguments, results and answers, so a run only picks and assembles."""


def _j(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


# --------------------------------------------------------------------------------------------- support data
# Names and addresses deliberately carry quotes, apostrophes and non-ASCII letters: the files must stay valid.
_CUSTOMERS = [
    "Zoë Ångström", "José Núñez", "Siobhán O'Brien", "Łukasz Wiśniewski", "Mei Ling Chen", "Aarav Sharma",
    "Fatima Al-Sayed", "Jürgen Müller", "Chloé Dubois", "Kwame Mensah", "Ana Beatriz Souza", "Yuki Tanaka",
    'Olivia "Liv" Hart', "Dmitri Volkov", "Priya Nair", "Sarah Johnson", "Michael Brown", "Emily Davis",
    "Noah Wilson", "Ingrid Bergström", "Grace Okafor", "Lucas Ferreira", "Hannah Schmidt",
    "Tomás Ó Ceallaigh",
]
_PRODUCTS = [
    ("Aeropress Go coffee maker", 39.95), ("WH-900 noise-cancelling headphones", 249.00),
    ('Ergonomic office chair "Atlas"', 389.00), ("Stainless water bottle 1 L", 24.50),
    ("Mechanical keyboard (US layout)", 129.00), ('27" 4K monitor', 329.99),
    ("Trail running shoes – size 42", 119.00), ("Cast-iron skillet 30 cm", 54.90),
    ("Smart thermostat T3", 179.00), ("Cork yoga mat", 32.00), ("Burr espresso grinder", 219.00),
    ("Kids' bike helmet", 45.00), ("Merino wool blanket", 89.00),
]
_ADDRESSES = [
    ("Calle de Alcalá 45, 3º izq.", "Madrid", "28014", "ES"),
    ("Friedrichstraße 123", "Berlin", "10117", "DE"),
    ('Apt "C", 18 Elm Street', "Springfield", "62704", "US"), ("Storgatan 7", "Malmö", "211 42", "SE"),
    ("Rua Augusta 1200", "São Paulo", "01304-001", "BR"), ("12 Rue de Rivoli", "Paris", "75004", "FR"),
    ("55 Queen St W, Suite 1200", "Toronto", "M5H 2M9", "CA"),
    ("221B Baker Street", "London", "NW1 6XE", "GB"),
]
_CARRIERS = ["UPS", "DHL", "FedEx", "PostNL", "Royal Mail"]
_KB = {
    "kb-112": ("Returns and refunds", "Items can be returned within 30 days of delivery. Refunds go to the "
               "original payment method within 5-10 business days. Agents may refund up to $100 without "
               "approval; larger refunds need a supervisor."),
    "kb-118": ("Damaged or missing items", "Report damage within 14 days. We refund or replace damaged items "
               "without asking for the item back; photos help but are not required."),
    "kb-205": ("International shipping", "We ship to the EU, UK, Norway and Switzerland. Customs fees for "
               "Norway and Switzerland are paid by the recipient."),
    "kb-206": ("Click & collect", "Orders can be picked up in our Berlin and Madrid stores 2 days after "
               "ordering. Bring the order confirmation."),
    "kb-301": ("Account settings", "Customers change their e-mail under Account > Profile; a confirmation "
               "link is sent to both the old and the new address."),
    "kb-302": ("Deleting an account (GDPR)", "Deletion requests are completed within 30 days. Order records "
               "are kept for 10 years for tax reasons, anonymised."),
    "kb-417": ("Discount codes", "Only one discount code can be used per order. Codes cannot be combined "
               "with the student discount."),
    "kb-418": ("Price match", "If the price drops within 14 days of purchase we refund the difference once "
               "per order."),
    "kb-520": ("Warranty", "Furniture carries a 5-year warranty, electronics 2 years. The warranty does not "
               "cover wear of fabric."),
}
_POLICY_QUESTIONS = [  # (question, article, the true fact, what a hallucinating agent says)
    ("What's your return window for opened electronics?", "kb-112", "30 days", "90 days"),
    ("Do you ship to Norway? And who pays customs?", "kb-205", "the recipient pays customs",
     "customs are included"),
    ("How do I change the e-mail on my account?", "kb-301", "Account > Profile", "by replying to this chat"),
    ("Can I use two discount codes on one order?", "kb-417", "only one code per order", "up to two codes"),
    ('Is the warranty on the "Atlas" chair 5 years or 2?', "kb-520", "5 years", "10 years"),
    ("Do you price match if the price drops after I buy?", "kb-418", "within 14 days", "within 60 days"),
    ("How long do refunds take to show up on a credit card?", "kb-112", "5-10 business days", "24 hours"),
    ("Can I pick up my order in the Madrid store?", "kb-206", "2 days after ordering", "the same day"),
    ("Please delete my account and all my data.\nThanks.", "kb-302", "within 30 days", "immediately"),
    ("Do I have to send back a damaged item to get a refund?", "kb-118", "no need to send it back",
     "you must send it back first"),
]
_UNIVERSAL = frozenset({"tool_loop", "malformed_tool_args", "ignored_tool_error", "hallucinated_answer",
                        "timeout", "provider_error", "cost_blowup"})
"""Failure modes every task can show; the others depend on the task (see the *_MIX tables)."""
_SUPPORT_MIX = [  # (intent, number of templates, failure modes beyond the universal ones)
    ("order_status", 10, {"wrong_tool"}), ("refund", 12, set()), ("missing_item", 6, set()),
    ("cancel_order", 6, set()), ("change_address", 8, {"wrong_tool"}), ("policy", 10, {"wrong_tool"}),
    ("wants_human", 8, {"missed_escalation"}),
]
_QUEUED = '{"status": "queued"}'


def _kb_result(kb_ids: list[str], rng: random.Random) -> str:
    return _j([{"id": k, "title": _KB[k][0], "snippet": _KB[k][1],
                "score": round(0.91 - 0.12 * i - rng.random() / 20, 3)} for i, k in enumerate(kb_ids)])


def _support_task(intent: str, n: int, modes: set[str], rng: random.Random) -> Task:
    name = rng.choice(_CUSTOMERS)
    first = name.split()[0].strip('"')
    email = name.lower().replace(" ", ".").replace('"', "").replace("'", "") + "@example.com"
    cid, oid = f"C-{rng.randrange(10000, 99999)}", f"ORD-2026-{rng.randrange(100000, 999999)}"
    product, price = rng.choice(_PRODUCTS)
    carrier, tracking = rng.choice(_CARRIERS), f"1Z{rng.randrange(10**9, 10**10)}"
    eta = f"2026-{rng.choice(['10', '11'])}-{rng.randrange(10, 28)}"
    status = {"order_status": rng.choice(["in_transit", "delayed", "processing"]),
              "cancel_order": "processing",
              "change_address": rng.choice(["processing", "processing", "shipped"])}.get(intent, "delivered")
    line1, city, postal, country = rng.choice(_ADDRESSES)
    order = {"order_id": oid, "status": status, "items": [{"name": product, "qty": 1, "price": price}],
             "total": price, "carrier": carrier, "tracking": tracking, "eta": eta,
             "shipping_address": {"line1": line1, "city": city, "postal_code": postal, "country": country}}
    customer = {"customer_id": cid, "name": name, "email": email, "tier": rng.choice(["basic", "gold"]),
                "orders_last_year": rng.randrange(1, 14)}
    f: dict[str, Any] = {
        "first": first, "email": email, "oid": oid, "product": product, "status": status,
        "user": f"customer:{cid}", "cust_args": {"email": email}, "cust_result": _j(customer),
        "order_args": {"order_id": oid}, "order_result": _j(order),
        "kb_refund": _kb_result(["kb-112", "kb-118"], rng),
    }
    if intent == "order_status":
        text = rng.choice([
            f"Hi, where is my order {oid}? It was supposed to arrive by {eta} and the tracking page hasn't "
            "changed in 3 days.",
            f"Order {oid} — any update?? I need it before the weekend 🙏",
            f"Hello,\nI ordered the {product} ({oid}) two weeks ago.\nWhen will it arrive?\n{first}"])
        f["answer"] = (f"Hi {first}, your order {oid} ({product}) is currently {status.replace('_', ' ')} "
                       f"with {carrier}; the expected delivery date is {eta}. Tracking number: {tracking}.")
        f["wrong"] = (f"Good news, {first}: order {oid} was delivered yesterday and signed for at your "
                      "front door.")
    elif intent in ("refund", "missing_item", "cancel_order"):
        amount = price
        if intent == "missing_item":
            amount = round(price * rng.choice([0.2, 0.35, 0.5]), 2)
            text = (f"Order {oid} arrived but part of the {product} set is missing (the manual says "
                    "3 pieces, I got 2).")
        elif intent == "cancel_order":
            text = f"Please cancel order {oid}, I ordered the wrong one. Thanks!"
        else:
            text = rng.choice([f"My {product} arrived damaged (the box said \"fragile\" but it was "
                               f"crushed). Order {oid}. I'd like a refund please.",
                               f"{oid}: broken on arrival. Refund?"])
        f["refund_args"] = {"order_id": oid, "amount": amount, "reason": intent}
        f["refund_result"] = _j({"refund_id": f"RF-{rng.randrange(10**5, 10**6)}", "status": "issued",
                                 "amount": amount, "currency": "USD"})
        opening = {"refund": f"I'm sorry your {product} arrived damaged, {first}.",
                   "missing_item": f"Sorry about the missing piece, {first}.",
                   "cancel_order": f"Order {oid} is cancelled, {first}."}[intent]
        f["answer"] = (f"{opening} I've issued a refund of ${amount:.2f} to your original payment method; "
                       "it usually shows up within 5-10 business days. A confirmation is on its way to "
                       f"{email}.")
        f["wrong"] = (f"Done! ${amount:.2f} will be back on your card within 24 hours, and you can keep the "
                      "item plus a $20 voucher for the trouble.")
        # above the limit the interesting failure is skipping the approval; below it, escalating for nothing
        modes.add("policy_violation" if amount > REFUND_LIMIT else "wrong_tool")
    elif intent == "change_address":
        nl1, ncity, npostal, ncountry = rng.choice(_ADDRESSES)
        text = f"I moved last week — can you send order {oid} to {nl1}, {npostal} {ncity} instead?"
        f["address_args"] = {"order_id": oid, "address": {"line1": nl1, "city": ncity, "postal_code": npostal,
                                                          "country": ncountry}}
        if status == "shipped":
            f["answer"] = (f"Order {oid} already left our warehouse with {carrier}, so I can't change the "
                           "address any more. You can redirect it with the carrier (tracking number "
                           f"{tracking}).")
            f["wrong"] = f"All set, {first}: order {oid} will now be delivered to {nl1}, {ncity}."
        else:
            f["answer"] = (f"Done, {first}: order {oid} will ship to {nl1}, {npostal} {ncity}. "
                           "I've e-mailed you.")
            f["wrong"] = f"Done, {first}: order {oid} now ships to {nl1} and will arrive tomorrow by express."
    elif intent == "policy":
        text, kb, fact, fake = _POLICY_QUESTIONS[n % len(_POLICY_QUESTIONS)]
        f["kb_args"] = {"query": text.split("\n")[0][:60].rstrip("?"), "top_k": 3}
        f["kb_result"] = _kb_result([kb, rng.choice(sorted(_KB))], rng)
        f["answer"] = (f"Good question! According to our policy ({_KB[kb][0]}): {fact}. "
                       f"{_KB[kb][1].split('.')[0]}.")
        f["wrong"] = f"Good question! Our policy says {fake}, so you're all set."
    else:  # wants_human
        text = rng.choice([
            f"This is the THIRD time I'm writing about order {oid}. I don't want another bot answer, "
            "I want to talk to a real person. Now.",
            f"Can I speak to a human please? My {product} broke after 2 days and nobody answers.",
            f"I'm really upset. Your courier left my package ({oid}) in the rain. Get me a manager!"])
        f["escalate_args"] = {"customer_id": cid, "order_id": oid, "priority": "high",
                              "reason": "Customer explicitly asked for a human; repeated contact."}
        f["escalate_result"] = _j({"ticket_id": f"ESC-{rng.randrange(10**4, 10**5)}", "queue": "tier2",
                                   "eta_minutes": 120})
        f["answer"] = (f"I'm really sorry, {first}. I've passed your case to a colleague (high priority); a "
                       f"person will contact you at {email} within 2 hours.")
        f["missed"] = (f"I understand your frustration, {first}. Order {oid} shows as {status}. As a "
                       "gesture of goodwill, here is a 10% code: SORRY10. Anything else I can help with?")
        f["wrong"] = (f"A manager has already approved a full refund and a replacement for order {oid}, "
                      f"{first}.")
    return Task(f"support.{intent}.{n:02d}", intent, text, frozenset(modes | _UNIVERSAL), f)


@cache
def support_tasks() -> tuple[Task, ...]:
    """The 60 task templates of the support agent (fixed, whatever the fleet's seed)."""
    rng = random.Random(20261019)
    return tuple(_support_task(intent, n, set(extra), rng) for intent, count, extra in _SUPPORT_MIX
                 for n in range(count))


def support_run(tr: Any, t: Task, mode: str | None, rng: random.Random) -> None:
    """Drive one support conversation; `mode` is the failure to inject (None for a normal run)."""
    f = t.facts
    tr.guard("prompt_injection", "allow", "no injection patterns found")
    _support_flow(tr, t, mode, rng)
    if mode is None and t.intent != "policy" and rng.random() < 0.25:
        # a quarter of the happy customers ask for one more thing in the same chat
        tr.user(f"Thanks! Could you also e-mail me the invoice for {f['oid']}?")
        tr.step("Sending the invoice.", Call("send_email", {"to": f["email"], "template": "invoice",
                                                            "variables": {"order_id": f["oid"]}}, _QUEUED))
        tr.answer(f"Done, the invoice for {f['oid']} is on its way to {f['email']}. Have a nice day!")


def _support_flow(tr: Any, t: Task, mode: str | None, rng: random.Random) -> None:
    f = t.facts
    # an ignored tool error ends with the normal "it worked" answer; a hallucination with invented facts
    final = f["wrong"] if mode == "hallucinated_answer" else f["answer"]
    if t.intent == "policy":
        kb = Call("search_kb", f["kb_args"], f["kb_result"])
        if mode == "malformed_tool_args":
            return _malformed(tr, kb, ["query"], rng)
        if mode == "ignored_tool_error":
            kb = kb._replace(result="", error="SearchBackendError: index 'support-kb' unavailable (503)")
        if mode == "wrong_tool":
            latest = Call("lookup_order", {"order_id": "latest"}, '{"error": "unknown order id"}')
            tr.step("Let me look at your recent orders.", latest)
            return tr.answer("I couldn't find anything about that in your orders, sorry. Anything else?")
        _lookup(tr, kb, mode, rng, "Let me check our help center.")
        if mode == "cost_blowup":
            _support_blowup(tr, f, rng)
        return tr.answer(final)
    cust = Call("get_customer", f["cust_args"], f["cust_result"])
    order = Call("lookup_order", f["order_args"], f["order_result"])
    read_only = t.intent == "order_status" or (t.intent == "change_address" and f["status"] == "shipped")
    if mode == "ignored_tool_error" and read_only:
        order = order._replace(result="", error="OrderServiceUnavailable: upstream carrier API returned 503")
    if mode == "wrong_tool" and t.intent in ("order_status", "change_address"):
        tr.step("Let me look up your account.", cust)
        tr.step(None, Call("search_kb", {"query": f"order {f['oid']} status", "top_k": 3}, f["kb_refund"]))
        return tr.answer("Orders usually arrive within 3-5 business days. If yours hasn't, please wait.")
    if mode == "malformed_tool_args" and read_only:
        tr.step("Let me look up your account.", cust)
        return _malformed(tr, order, ["order_id"], rng)
    if mode != "tool_loop" and rng.random() < tr.parallel_lookups:
        tr.step("Let me pull up your account and the order.", cust, order)
    else:
        tr.step("Let me look up your account first.", cust)
        _lookup(tr, order, mode, rng, None)
    if mode == "cost_blowup":
        _support_blowup(tr, f, rng)
    if read_only:
        if f["status"] == "delayed" and mode is None:
            delays = Call("search_kb", {"query": "carrier delays", "top_k": 3}, f["kb_refund"])
            tr.step("Let me check for known delays.", delays)
        return tr.answer(final)
    if t.intent == "wants_human":
        if mode == "missed_escalation":
            return tr.answer(f["missed"])
        esc = Call("escalate_to_human", f["escalate_args"], f["escalate_result"])
        if mode == "malformed_tool_args":
            return _malformed(tr, esc, ["customer_id", "reason"], rng)
        if mode == "ignored_tool_error":
            esc = esc._replace(result="", error="EscalationQueueFull: tier2 queue is at capacity (503)")
        tr.step("I'm handing this to a colleague.", esc)
        if not esc.error:
            _email(tr, f, "escalation_ticket")
        return tr.answer(final)
    if t.intent == "change_address":
        if mode != "hallucinated_answer":  # the hallucination: claiming a change that was never made
            upd = Call("update_address", f["address_args"], _j({"order_id": f["oid"], "status": "updated"}))
            if mode == "malformed_tool_args":
                return _malformed(tr, upd, ["order_id", "address"], rng)
            if mode == "ignored_tool_error":
                upd = upd._replace(result="", error="AddressValidationError: postal code does not match city")
            tr.step("Updating the shipping address now.", upd)
            _email(tr, f, "address_changed")
        return tr.answer(final)
    _refund(tr, t, mode, rng)


def _lookup(tr: Any, call: Call, mode: str | None, rng: random.Random, text: str | None) -> None:
    """A read-only call, with the loop failure and the harmless retries successful runs also show."""
    if mode == "tool_loop":
        for _ in range(rng.randint(4, 8)):
            tr.step("Let me check that again.", call)
        raise tr.give_up("I'm sorry, I'm having trouble retrieving that information right now.")
    if mode is None and isinstance(call.args, dict) and "order_id" in call.args and rng.random() < 0.05:
        # the customer wrote the bare number; the first lookup fails and the agent fixes the format
        bare = call.args["order_id"][-6:]
        tr.step(text, call._replace(args={"order_id": bare}, result="",
                                    error=f"OrderNotFound: no order '{bare}'"))
        text = "That id needs the full format; retrying."
    elif mode is None and rng.random() < 0.008:
        # a transient error and an identical retry: rare, so a loop detector stays quiet on successes
        tr.step(text, call._replace(result="", error="ServiceUnavailable: 503 from upstream"))
        text = "Temporary error, retrying."
    tr.step(text, call)


def _malformed(tr: Any, call: Call, required: list[str], rng: random.Random) -> None:
    assert isinstance(call.args, dict)
    if rng.random() < 0.5:
        raw = _j(call.args)[: rng.randrange(12, 40)]  # the model stopped mid-object
        bad = call._replace(args=raw, result="", error=f"ValidationError: invalid JSON in arguments: {raw!r}")
    else:
        missing = rng.choice(required)
        error = f"ValidationError: 1 validation error for {call.tool}\n{missing}\n  Field required"
        bad = call._replace(args={k: v for k, v in call.args.items() if k != missing}, result="", error=error)
    tr.step(None, bad)
    if rng.random() < 0.5:
        tr.step("Let me try that again.", bad)
    tr.answer("I'm sorry, something went wrong on our side and I couldn't complete this. Please try again.")


def _email(tr: Any, f: dict[str, Any], template: str) -> None:
    tr.step(None, Call("send_email", {"to": f["email"], "template": template,
                                      "variables": {"order_id": f["oid"]}}, _QUEUED))


def _support_blowup(tr: Any, f: dict[str, Any], rng: random.Random) -> None:
    """The agent keeps widening its search and pulls whole order histories into the context."""
    for i in range(rng.randint(4, 6)):
        if i % 3 == 2:
            call = Call("lookup_order", {"order_id": f["oid"], "include": "full_history", "page": i // 3 + 1},
                        f["order_result"][:200] + " ... (truncated)", tokens=rng.randint(1500, 3000))
        else:
            call = Call("search_kb", {"query": f"{f['product']} policy exceptions {i}", "top_k": 20},
                        f["kb_refund"][:200] + " ... (truncated)", tokens=rng.randint(1500, 3000))
        tr.step("I need more context before answering.", call)


def _refund(tr: Any, t: Task, mode: str | None, rng: random.Random) -> None:
    f = t.facts
    amount = f["refund_args"]["amount"]
    if t.intent != "cancel_order":
        policy = Call("search_kb", {"query": "damaged item refund", "top_k": 3}, f["kb_refund"])
        tr.step("Let me check the refund policy.", policy)
    refund = Call("refund_order", f["refund_args"], f["refund_result"])
    if mode == "malformed_tool_args":
        return _malformed(tr, refund, ["order_id", "amount"], rng)
    if mode == "wrong_tool":
        tr.step("I'll pass this to a colleague.", Call(
            "escalate_to_human", {"order_id": f["oid"], "priority": "low", "reason": "refund request"},
            '{"ticket_id": "ESC-30117", "queue": "tier2", "eta_minutes": 2880}'))
        return tr.answer("I've forwarded your request to our team; they will get back to you in 2-3 days.")
    if mode == "ignored_tool_error":
        refund = refund._replace(result="", error="PaymentGatewayError: upstream timeout after 30s")
    tr.think("I'll issue the refund.", refund)
    if mode == "policy_violation":
        tr.guard("refund_policy", "block", f"amount {amount:.2f} exceeds {REFUND_LIMIT:.2f}; no approval")
        tr.run(refund)  # the agent goes ahead anyway: that is the violation
    else:
        if amount > REFUND_LIMIT:
            decision = "approved" if rng.random() < 0.85 else "rejected"
            tr.human("refund", decision, f"refund of ${amount:.2f} for {f['oid']}")
            if decision == "rejected":
                tr.reply(refund, "Refund not executed: rejected by the reviewer (offer store credit).")
                return tr.answer(f"I'm sorry, {f['first']}: a full refund isn't possible for this order, but "
                                 "I can offer you store credit for the full amount. Would that work?")
        tr.guard("refund_policy", "allow", "within limit or approved")
        tr.run(refund)
    _email(tr, f, "refund_confirmation")
    tr.answer(f["wrong"] if mode == "hallucinated_answer" else f["answer"])


# ---------------------------------------------------------------------------------------------- coding data
_MODULES = [  # (source, test, symbol, test name, snippet): backslashes, tabs, quotes and unicode on purpose
    ("src/billing/invoice.py", "tests/test_invoice.py", "round_amount", "test_rounding_half_even",
     "def round_amount(value: Decimal) -> Decimal:\n"
     '    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)'),
    ("src/billing/tax.py", "tests/test_tax.py", "vat_rate", "test_vat_rate_for_norway",
     'VAT = {"DE": 0.19, "FR": 0.20, "NO": 0.25}\n\n'
     "def vat_rate(country: str) -> float:\n    return VAT[country]"),
    ("src/pipeline/parser.py", "tests/test_parser.py", "parse_date", "test_parse_date_rejects_garbage",
     'DATE_RE = re.compile(r"^\\d{4}-\\d{2}-\\d{2}$")\n\n'
     "def parse_date(s: str) -> date:\n    return date.fromisoformat(s)"),
    ("src/pipeline/dedupe.py", "tests/test_dedupe.py", "dedupe_events", "test_dedupe_keeps_latest",
     "def dedupe_events(events):\n    seen = {}\n    for e in events:\n        seen[e.id] = e\n"
     "    return list(seen)"),
    ("cli/commands/export.py", "tests/test_export_cmd.py", "export_cmd", "test_export_since_filter",
     '@click.command()\n@click.option("--format", default="csv")\n'
     "def export_cmd(format: str) -> None:\n    ..."),
    ("web/src/api/client.ts", "web/src/api/client.test.ts", "fetchWithRetry",
     "retries only idempotent requests",
     "export async function fetchWithRetry(req: Request, tries = 3) {\n\tfor (let i = 0; i < tries; i++) {"),
    ("web/src/components/Cart.tsx", "web/src/components/Cart.test.tsx", "CartTotal", "shows the total in €",
     "export function CartTotal({ items }: Props) {\n"
     "  const total = items.reduce((s, i) => s + i.price, 0);"),
    ("src/auth/session.py", "tests/test_session.py", "refresh_token", "test_refresh_expired_token",
     "def refresh_token(tok: Token) -> Token:\n    if tok.expires_at < now():\n"
     "        raise Expired(tok.id)"),
    ("src/notify/email.py", "tests/test_email.py", "render_subject", "test_subject_escapes_unicode",
     "def render_subject(order) -> str:\n    return f\"Your order {order.id} ✓\""),
    ("src/search/index.py", "tests/test_index.py", "tokenize", "test_tokenize_handles_umlauts",
     "def tokenize(text: str) -> list[str]:\n    return text.lower().split()"),
]
_CODING_MIX = [  # (intent, number of templates, failure modes beyond the universal ones and wrong_tool)
    ("fix_test", 14, {"policy_violation"}), ("add_feature", 12, {"policy_violation"}),
    ("refactor", 10, {"policy_violation"}), ("explain", 10, set()),
    ("bump_dependency", 6, {"policy_violation"}), ("migration", 8, {"missed_escalation"}),
]
_NEIGHBOURS = ["__init__.py", "utils.py", "models.py", "config.py", "errors.py"]
_BIG_FILES = ["poetry.lock", "tests/fixtures/orders_2026.json", "web/dist/bundle.min.js",
              "data/schema_dump.sql"]
_PYPROJECT = 'dependencies = [\n    "pydantic>=2.5",\n    "httpx>=0.27",\n]'
_MIGRATION = ("def upgrade():\n    op.add_column('orders', sa.Column('discount_code', sa.String(32), "
              "nullable=True))\n")


def _pytest_out(target: str, test: str, failed: int, total: int) -> str:
    head = f"$ pytest {target} -q\ncollected {total} items\n\n"
    if failed:
        return (head + f"FAILED {target}::{test.replace(' ', '_')} - AssertionError: assert "
                f"Decimal('10.12') == Decimal('10.13')\n{failed} failed, {total - failed} passed in 4.31s")
    return head + f"{total} passed in 3.97s"


def _patch(snippet: str) -> str:
    if "pydantic>=2.5" in snippet:
        return snippet.replace(">=2.5", ">=2.9")
    if "return" in snippet:
        return snippet.replace("return", "# fixed: handle the edge case first\n    return", 1)
    return snippet + "\n    // fixed: handle the edge case first"


def _coding_task(intent: str, n: int, modes: set[str], rng: random.Random) -> Task:
    src, test, sym, test_name, snippet = _MODULES[(n * 3 + len(intent)) % len(_MODULES)]
    total = rng.randrange(40, 400)
    test_fn = test_name.replace(" ", "_")
    target = f"{test}::{test_fn}"
    text = {
        "fix_test": f"`{target}` fails since #{rng.randrange(300, 900)} was merged. Fix the code, not the "
                    "test.",
        "add_feature": f"Add a `strict` flag to `{sym}` in {src} (default False) and cover it with a test.",
        "refactor": f"Rename `{sym}` to `{sym}_v2` everywhere and keep a deprecated alias. Don't break the "
                    "API.",
        "explain": f"Can you explain how `{sym}` in {src} works? We see odd behaviour in production: "
                   f"\"{test_name}\".",
        "bump_dependency": "Bump pydantic to >=2.9 in pyproject.toml and fix whatever breaks.",
        "migration": "Add a nullable `discount_code` column to `orders` with an Alembic migration. Ask me "
                     "before running it against staging!",
    }[intent]
    if intent == "bump_dependency":
        src, sym, snippet = "pyproject.toml", "pydantic", _PYPROJECT
    f = {
        "src": src, "test": test, "sym": sym, "target": target, "total": total, "snippet": snippet,
        "search": _j([{"path": src, "line": rng.randrange(10, 200), "text": snippet.split("\n")[0]},
                      {"path": test, "line": rng.randrange(5, 90), "text": f"def {test_fn}():"}]),
        "read_src": f"{snippet}\n... ({rng.randrange(80, 600)} more lines)",
        "read_test": f"def {test_fn}():\n    assert {sym}(...) == ...\n... (more lines)",
        "fail": _pytest_out(test, test_name, rng.randrange(1, 3), total),
        "pass": _pytest_out(test, test_name, 0, total), "patch": _patch(snippet),
        "diff": f"diff --git a/{src} b/{src}\n--- a/{src}\n+++ b/{src}\n@@ -12,3 +12,4 @@\n"
                "+    # fixed edge case",
    }
    if intent == "explain":
        f["answer"] = (f"`{sym}` in {src} is short: {snippet.splitlines()[0]!r}. The odd behaviour comes "
                       "from the edge case it does not handle; see the test name for the scenario.")
        f["wrong"] = f"`{sym}` delegates to the `{sym}_impl` C extension, which caches results."
    else:
        f["answer"] = f"Done. I changed {src} (see the diff) and `{test}` passes: {total} passed."
        f["wrong"] = f"All {total + 12} tests pass and I also updated the changelog and the docs."
    return Task(f"coding.{intent}.{n:02d}", intent, text, frozenset(modes | _UNIVERSAL | {"wrong_tool"}), f)


@cache
def coding_tasks() -> tuple[Task, ...]:
    """The 60 task templates of the coding agent (fixed, whatever the fleet's seed)."""
    rng = random.Random(20261020)
    return tuple(_coding_task(intent, n, set(extra), rng) for intent, count, extra in _CODING_MIX
                 for n in range(count))


def coding_run(tr: Any, t: Task, mode: str | None, rng: random.Random) -> None:
    """Drive one coding-agent session; `mode` is the failure to inject (None for a normal run)."""
    f = t.facts
    src, test = f["src"], f["test"]
    final = f["wrong"] if mode == "hallucinated_answer" else f["answer"]
    tests = Call("run_tests", {"target": f["target"]}, f["fail"])
    if t.intent == "fix_test":
        tr.step("Let me reproduce the failure first.", tests)
    search = Call("search_code", {"query": f["sym"], "path": src.split("/")[0]}, f["search"])
    tr.step(f"Searching for `{f['sym']}`.", search)
    if rng.random() < 0.4:
        callers = search._replace(args={"query": f"{f['sym']}(", "path": "."})
        tr.step("Narrowing the search to call sites.", callers)
    read = Call("read_file", {"path": src}, f["read_src"], tokens=rng.randint(600, 2500))
    if mode == "tool_loop":
        loop = tests if t.intent == "fix_test" else read
        for _ in range(rng.randint(4, 8)):
            tr.step("Let me look at that once more.", loop)
        raise tr.give_up("I wasn't able to finish this; the results did not change between attempts.")
    tr.step(None, read)
    tr.step(None, Call("read_file", {"path": test}, f["read_test"], tokens=rng.randint(300, 1500)))
    for name in _NEIGHBOURS[:rng.choice([1, 1, 2, 2, 3, 4])]:  # normal exploration of neighbouring files
        path = f"{src.rsplit('/', 1)[0]}/{name}"
        tr.step(None, Call("read_file", {"path": path}, f"# {path}\n... ({rng.randrange(20, 300)} lines)",
                           tokens=rng.randint(200, 1800)))
    if mode == "cost_blowup":
        for i in range(rng.randint(6, 9)):
            big = _BIG_FILES[i % len(_BIG_FILES)]
            tr.step("I need the full context of this file.", Call(
                "read_file", {"path": big, "offset": i * 4000},
                f"{big} (lines {i * 4000}-{i * 4000 + 4000})\n... (truncated)",
                tokens=rng.randint(3000, 5000)))
    if t.intent == "explain":
        return _explain(tr, t, mode, read, final)
    patch = f["patch"]
    write = Call("write_file", {"path": src, "content": patch}, f"wrote {len(patch)} bytes to {src}")
    if mode == "malformed_tool_args":
        # the model put raw newlines and quotes into the JSON string: a classic
        raw = '{"path": "' + src + '", "content": "' + patch + '"}'
        bad_json = "ValidationError: Invalid JSON: control character (\\u000a) not allowed in string"
        tr.step("Applying the fix.", write._replace(args=raw, result="", error=bad_json))
        no_path = "ValidationError: 1 validation error for write_file\npath\n  Field required"
        tr.step("Retrying.", write._replace(args={"content": patch}, result="", error=no_path))
        return tr.answer("I couldn't apply the change because the file tool rejected my edits.")
    if mode == "ignored_tool_error":
        write = write._replace(result="", error=f"PermissionError: [Errno 13] Permission denied: '{src}'")
    if mode == "wrong_tool":
        _shell(tr, f"sed -i 's/return/# patched\\n    return/' {src}", "")
    else:
        tr.step("Applying the fix.", write)
    if t.intent == "migration":
        mig = "migrations/versions/20261020_add_discount_code.py"
        tr.step(None, Call("write_file", {"path": mig, "content": _MIGRATION},
                           f"wrote {len(_MIGRATION)} bytes to {mig}"))
        if mode != "missed_escalation":
            tr.human("run_migration", "approved", "alembic upgrade head on staging")
        _shell(tr, "alembic upgrade head", "INFO  [alembic.runtime.migration] Running upgrade 9c1e -> 4f2a")
    elif t.intent == "bump_dependency":
        _shell(tr, 'pip install -e ".[test]"', "Successfully installed pydantic-2.9.2 pydantic-core-2.23.4")
    if src.endswith(".py") and rng.random() < 0.4:
        _shell(tr, f"ruff check {src}", "All checks passed!")
    if t.intent != "fix_test" and mode is None and rng.random() < 0.3:
        tr.step("Running the tests.", tests)  # a first attempt fails, the agent fixes and re-runs
        tr.step("One more fix.", Call("write_file", {"path": test, "content": "# adjusted fixture\n"},
                                      f"wrote 19 bytes to {test}"))
    still_failing = mode in ("hallucinated_answer", "ignored_tool_error")
    tr.step("Running the tests.", tests if still_failing else tests._replace(result=f["pass"]))
    tr.step(None, Call("git_diff", {"staged": False}, "" if mode == "ignored_tool_error" else f["diff"]))
    if mode == "policy_violation":
        _shell(tr, "git push --force origin main", "+ 3f2a1c9...8e7d6b5 main -> main (forced update)",
               blocked=True)
    tr.answer(final)


def _explain(tr: Any, t: Task, mode: str | None, read: Call, answer: str) -> None:
    """An explanation needs no edits: its failures are unreadable files, edits anyway, or made-up facts."""
    src = t.facts["src"]
    if mode == "malformed_tool_args":
        raw = '{"path": "' + src.rsplit("/", 1)[0]
        tr.step("Let me open the caller.", read._replace(
            args=raw, result="", error=f"ValidationError: invalid JSON in arguments: {raw!r}"))
        return tr.answer("I couldn't open the files I needed, so I can't explain this reliably yet.")
    if mode == "ignored_tool_error":
        impl = src.replace(".", "_impl.", 1)
        tr.step("Let me open the implementation.", Call("read_file", {"path": impl}, "",
                                                        f"FileNotFoundError: {impl}"))
    if mode == "wrong_tool":
        patch = t.facts["patch"]
        tr.step("I'll add comments to make it clearer.", Call("write_file", {"path": src, "content": patch},
                                                              f"wrote {len(patch)} bytes to {src}"))
    tr.answer(answer)


def _shell(tr: Any, cmd: str, out: str, *, blocked: bool = False) -> None:
    call = Call("run_shell", {"command": cmd, "timeout_s": 120}, f"$ {cmd}\n{out}\nexit code 0")
    tr.think(None, call)
    if blocked:
        tr.guard("shell_policy", "block", "matches deny-list: force push to a protected branch")
    else:
        tr.guard("shell_policy", "allow", "command allowed")
    tr.run(call)  # a blocked command that still runs is the policy violation

// Form fields for the parameters of an operation, from the JSON Schema the catalogue gives.

import { field, h, setFieldError, uid } from "./dom.js";

/** The schema of a value that may also be null, and whether null was allowed. */
function unwrapOptional(schema) {
  const choices = schema.anyOf;
  if (!choices) return [schema, false];
  const concrete = choices.filter((choice) => choice.type !== "null");
  return [concrete.length === 1 ? { ...schema, ...concrete[0], anyOf: undefined } : schema, true];
}

const POINT = "(point)";

/** The named choice and the object choice of a parameter that is one or the other (a gravity
 * or a focal point), or null for any other shape. */
function choiceOrObject(schema) {
  const choices = (schema.anyOf || []).filter((choice) => choice.type !== "null");
  const named = choices.find((choice) => choice.enum);
  const object = choices.find((choice) => choice.type === "object" && choice.properties);
  return choices.length === 2 && named && object ? [named, object] : null;
}

/** A select of the named choices plus one more, the object, whose fields (each labelled, and
 * described by the parameter's hint and error) show when it is chosen. */
function choiceOrObjectControl(schema, [named, object], optional) {
  const title = object.title ? object.title.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase() : "other";
  const name = `${title[0].toUpperCase()}${title.slice(1)}`;
  const select = h(
    "select",
    {},
    optional ? h("option", { value: "" }, "(none)") : null,
    named.enum.map((choice) => h("option", { value: choice }, choice)),
    h("option", { value: POINT }, `${title}…`),
  );
  select.value = schema.default ?? (optional ? "" : named.enum[0]);
  const inputs = Object.entries(object.properties).map(([key, property]) =>
    h("input", {
      type: "number",
      inputmode: "decimal",
      step: "any",
      min: property.minimum,
      max: property.maximum,
      value: property.minimum !== undefined && property.maximum !== undefined
        ? (property.minimum + property.maximum) / 2
        : 0,
      title: property.description || key,
      "data-key": key,
    }),
  );
  const box = h(
    "span",
    { class: "object-fields", id: uid("object"), hidden: true },
    inputs.map((input) => h("label", { class: "object-field" }, `${name} ${input.dataset.key}`, input)),
  );
  select.setAttribute("aria-controls", box.id);
  select.addEventListener("change", () => {
    box.hidden = select.value !== POINT;
  });
  const read = (control) => {
    if (control.value !== POINT) return control.value || null;
    // An emptied box is sent as null, for the API to name the missing number.
    return Object.fromEntries(
      inputs.map((input) => [input.dataset.key, input.value === "" ? null : Number(input.value)]),
    );
  };
  return [select, read, [box]];
}

function controlFor(schema, optional, required) {
  const pair = choiceOrObject(schema);
  if (pair) return choiceOrObjectControl(schema, pair, optional);
  if (schema.enum) {
    const select = h(
      "select",
      {},
      optional ? h("option", { value: "" }, "(none)") : null,
      schema.enum.map((choice) => h("option", { value: choice }, choice)),
    );
    select.value = schema.default ?? (optional ? "" : schema.enum[0]);
    return [select, (control) => control.value || null];
  }
  if (schema.type === "boolean") {
    const box = h("input", { type: "checkbox", checked: Boolean(schema.default) });
    return [box, (control) => control.checked];
  }
  if (schema.type === "integer" || schema.type === "number") {
    const input = h("input", {
      type: "number",
      inputmode: schema.type === "integer" ? "numeric" : "decimal",
      step: schema.type === "integer" ? "1" : "any",
      min: schema.minimum ?? schema.exclusiveMinimum,
      max: schema.maximum ?? schema.exclusiveMaximum,
      required: required || null,
    });
    if (schema.default !== undefined && schema.default !== null) input.value = schema.default;
    return [input, (control) => (control.value === "" ? null : Number(control.value))];
  }
  if (schema.type === "string") {
    const input = h("input", {
      type: "text",
      maxlength: schema.maxLength,
      required: required || null,
      spellcheck: "false",
    });
    if (schema.default) input.value = schema.default;
    return [input, (control) => (control.value.trim() === "" ? null : control.value.trim())];
  }
  // A shape this form does not know: typed as JSON.
  const area = h("textarea", { rows: 2, spellcheck: "false" });
  if (schema.default !== undefined) area.value = JSON.stringify(schema.default);
  return [area, (control) => (control.value.trim() === "" ? null : JSON.parse(control.value))];
}

/**
 * The fields of an object schema (properties with a `const` are fixed, not shown).
 * `read()` gives the values that differ from the defaults (plus the fixed ones);
 * `showErrors({name: message})` shows the server's field errors beside their fields.
 */
export function schemaFields(schema, { omit = [] } = {}) {
  const required = new Set(schema.required || []);
  const fixed = {};
  const readers = [];
  const controls = {};
  const fields = [];
  for (const [name, property] of Object.entries(schema.properties || {})) {
    if (omit.includes(name)) continue;
    if (property.const !== undefined) {
      fixed[name] = property.const;
      continue;
    }
    const [concrete, optional] = unwrapOptional(property);
    const [control, read, extras = []] = controlFor(concrete, optional, required.has(name));
    control.name = name;
    controls[name] = control;
    const label = (property.title || name) + (required.has(name) ? " (required)" : "");
    const element = field(label, control, property.description);
    control.after(...extras);
    // The extra fields share the parameter's hint and error.
    for (const input of element.querySelectorAll(".object-fields input")) {
      input.setAttribute("aria-describedby", control.getAttribute("aria-describedby"));
    }
    fields.push(element);
    readers.push([name, control, read, property.default]);
  }
  return {
    fields,
    controls,
    read() {
      const values = { ...fixed };
      for (const [name, control, read, fallback] of readers) {
        let value;
        try {
          value = read(control);
        } catch {
          setFieldError(control, "This is not valid JSON.");
          throw new Error(`${name} is not valid JSON`);
        }
        if (value === null || value === fallback) continue;
        values[name] = value;
      }
      return values;
    },
    /** Shows each message beside its field; returns the names that had a field here. */
    showErrors(messages) {
      for (const [name, control] of Object.entries(controls)) {
        setFieldError(control, messages[name]);
      }
      return new Set(Object.keys(messages).filter((name) => name in controls));
    },
  };
}

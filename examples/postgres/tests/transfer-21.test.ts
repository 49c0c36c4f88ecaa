import { transferScenario } from './scenarios.js';

transferScenario(210);
